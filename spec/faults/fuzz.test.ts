import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { promises as fsp, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { startMenderServer, type MenderServer } from '../../fixtures/mender-server';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import { startOrigin, tempDir, type TestOrigin } from '../integration/cache-harness';
import { generateCases, type FuzzCase } from '../support/fuzz-cases';
import { sendRaw, type RawOutcome } from '../support/fuzz-raw-http';
import type { GatewayProcess } from '../support/gateway-process';
import { signedAuthBody } from '../support/mtls-device';
import {
  alive,
  assertNoSecrets,
  fdCount,
  gatewayConfig,
  knob,
  linkPath,
  newSecret,
  request,
  runGateway,
  settledFds,
  signerFor,
} from './fault-harness';
import { recordFigures } from './figures';

// Hostile input over raw sockets to the real gateway process (cache, artifact proxy and
// DeviceSystem on, the emulator behind it): a seeded run of request lines, headers, framing,
// JSON bodies, signed links with each byte changed, forged expiries and ranges. 0 crashes,
// 0 hangs, every answer well-formed: a 4xx/5xx where the input is wrong, a correct one where
// it is valid. FAULTS_FUZZ_CASES (default 3000), FAULTS_FUZZ_SEED (default: random, printed).

const COUNT = knob('FAULTS_FUZZ_CASES', 3000);
const SEED = knob('FAULTS_FUZZ_SEED', Math.floor(Math.random() * 2 ** 31));
const PARALLEL = 12;
const SECONDS = knob('FAULTS_FUZZ_SECONDS', 120);
const SIZE = 64 * 1024 + 7;
const secret = newSecret();
let dir: string;
let store: S3Store;
let server: MenderServer;
let origin: TestOrigin;
let gw: GatewayProcess;
let body: Buffer;

before(async () => {
  dir = await tempDir('faults-fuzz-');
  body = Buffer.from(Array.from({ length: SIZE }, (_, i) => (i * 7919) & 0xff));
  store = await startS3Store();
  server = await startMenderServer({ store, autoAccept: true });
  origin = await startOrigin(body);
  const config = gatewayConfig({ upstream: server.url, cachePath: path.join(dir, 'cache'), secret, timeout: '3s' });
  (config.Features as Record<string, unknown>).DeviceSystem = {
    Enabled: true,
    SystemID: 'fuzz-system',
    DefaultInventory: [{ name: 'site', value: 'lab' }],
  };
  gw = await runGateway({ dir, name: 'fuzz', config });
});
after(async () => {
  await gw?.stop();
  await origin?.close();
  await server?.close();
  await store?.close();
  await fsp.rm(dir, { recursive: true, force: true });
});

async function deviceJwt(base: string): Promise<string> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const keyFile = path.join(dir, 'device.key');
  writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const auth = signedAuthBody({ mac: '02:00:00:09:00:01' }, keyFile);
  const r = await request(`${base}/api/devices/v1/authentication/auth_requests`, {
    method: 'POST',
    body: auth.raw,
    headers: { 'Content-Type': 'application/json', 'X-MEN-Signature': auth.signature },
  });
  assert.equal(r.status, 200, r.body.toString());
  return r.body.toString().trim();
}

function judge(c: FuzzCase, o: RawOutcome): string | null {
  if (o.kind === 'hang') return `hang: ${o.detail}`;
  if (o.kind === 'closed-silently' && c.incomplete) return null;
  if (o.kind !== 'response') return `${o.kind}${o.detail ? `: ${o.detail}` : ''}`;
  const status = o.status!;
  if (status >= 400 && !c.head && o.body!.length > 0) {
    try {
      const parsed = JSON.parse(o.body!.toString()) as { error?: unknown };
      if (typeof parsed.error !== 'string') return `${status} without an "error" string`;
    } catch {
      return `${status} whose body is not JSON: ${JSON.stringify(o.body!.subarray(0, 120).toString())}`;
    }
  }
  switch (c.expect.kind) {
    case 'error':
      return status >= 400 ? null : `accepted (${status}) an input that must be refused`;
    case 'answer':
      return status < 500 ? null : `${status} while every peer is healthy`;
    case 'link':
      if (c.expect.equivalent) return status < 500 ? null : `${status} for a valid link`;
      return status >= 400 && status < 500 ? null : `${status} for a link that does not verify`;
    case 'range':
      return judgeRange(c.expect.header, o, c.head ?? false);
  }
}

/** 200 whole (a server may ignore Range), a 206 that is the exact bytes asked for, or 416 when unsatisfiable. */
function judgeRange(header: string, o: RawOutcome, head: boolean): string | null {
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  const first = m?.[1] ? Number(m[1]) : undefined;
  const last = m?.[2] ? Number(m[2]) : undefined;
  const unsatisfiable =
    m !== null && ((first !== undefined && first >= SIZE && (last === undefined || last >= first)) || (first === undefined && last === 0));
  if (o.status === 200) {
    if (head) return o.headers!['content-length'] === String(SIZE) ? null : `HEAD 200 with Content-Length ${o.headers!['content-length']}`;
    return o.body!.equals(body) ? null : `200 with ${o.body!.length} wrong bytes`;
  }
  if (o.status === 416) return unsatisfiable ? null : `416 for a satisfiable or malformed range ${header}`;
  if (o.status === 206) {
    const cr = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(o.headers!['content-range'] ?? '');
    if (!cr || !m) return `206 with Content-Range ${o.headers!['content-range']} for ${header}`;
    const [a, b, total] = [Number(cr[1]), Number(cr[2]), Number(cr[3])];
    const wantA = first !== undefined ? first : SIZE - Math.min(last ?? 0, SIZE);
    const wantB = first !== undefined && last !== undefined ? Math.min(last, SIZE - 1) : SIZE - 1;
    if (total !== SIZE || a !== wantA || b !== wantB) return `206 ${a}-${b}/${total} for ${header} (want ${wantA}-${wantB}/${SIZE})`;
    if (head) return null;
    return o.body!.equals(body.subarray(a, b + 1)) ? null : `206 with wrong bytes for ${header}`;
  }
  return `${o.status} for Range ${header}`;
}

test(`fuzz: ${COUNT} hostile requests (seed ${SEED}): 0 crashes, 0 hangs, every answer well-formed and right`, {
  timeout: SECONDS * 1000 + 60_000,
}, async () => {
  const base = gw.url('http');
  const port = Number(base.split(':').pop());
  const pid = gw.process.pid!;
  const jwt = await deviceJwt(base);
  const link = linkPath(signerFor(secret, 'http://gateway.invalid'), origin.url('fuzz.mender'));
  assert.equal((await request(base + link)).status, 200, 'the link is valid before it is mangled');
  const fdBefore = await settledFds(pid, 0, 500);
  const cases = generateCases(SEED, COUNT, { link, size: SIZE, jwt, secret });
  const failures: string[] = [];
  const families = new Map<string, number>();
  let next = 0;
  const started = Date.now();
  const deadline = started + SECONDS * 1000;
  let tried = 0;
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (next < cases.length && Date.now() < deadline && failures.length < 50) {
        const i = next++;
        const c = cases[i];
        const outcome = await sendRaw(port, c.bytes, { timeoutMs: 8_000, head: c.head, halfClose: c.incomplete ?? false });
        tried++;
        families.set(c.family, (families.get(c.family) ?? 0) + 1);
        const why = judge(c, outcome);
        if (why)
          failures.push(
            `#${i} ${c.family}: ${why}\n    sent: ${JSON.stringify(c.bytes.subarray(0, 300).toString('latin1'))}${c.bytes.length > 300 ? ` … (${c.bytes.length} bytes)` : ''}`,
          );
        if (!alive(gw)) failures.push(`#${i} ${c.family}: the gateway exited (${gw.process.exitCode ?? gw.process.signalCode})`);
      }
    }),
  );
  const ms = Date.now() - started;
  assert.ok(alive(gw), 'the gateway survived the run');
  assert.equal((await request(`${base}/api/internal/v1/gateway/alive`)).status, 204);
  assert.deepEqual(failures, [], `seed ${SEED}: ${failures.length} bad answers`);
  assert.ok(tried >= Math.min(COUNT, 1000), `only ${tried} cases ran within the time bound`);
  const fdAfter = await settledFds(pid, fdBefore, 20_000);
  assert.ok(fdAfter <= fdBefore + 2, `descriptors: ${fdBefore} before, ${fdAfter} after (fd ${fdCount(pid)})`);
  assertNoSecrets(gw.output(), [secret, jwt]);
  recordFigures('fuzzed requests', {
    trials: 1,
    faults: tried,
    inputs: tried,
    bytesLost: 0,
    note: `seed ${SEED}, ${ms} ms, ${[...families].map(([f, n]) => `${f} ${n}`).join(', ')}`,
  });
});
