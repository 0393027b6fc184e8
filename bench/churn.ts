import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMenderServer, type MenderServer } from '../fixtures/mender-server';
import { startS3Store } from '../fixtures/s3-store';
import { AUTH, INVENTORY, NEXT } from '../spec/support/device-api-paths';
import { startQuietGateway, type QuietGateway } from '../spec/support/gateway-process';
import { authBodySignedBy } from '../spec/support/mtls-device';
import { heapAfterGc } from '../spec/support/inspector-heap';
import { rssBytes } from '../spec/support/process-stats';
import { loadAverage, machineLine } from './compare/report';
import { runMain } from './part-timer';

// Identity churn against one gateway (docs/benchmarks.md, "Identity churn"): does the state a
// device leaves behind level off once the per-device maps reach their caps? One gateway process
// (HTTP, ReportJournal, DeviceSystem, Metrics; Workers 1) in front of the Mender server emulator
// (auto-accept). Each round brings BENCH_CHURN_ROUND devices never seen before, BENCH_CHURN_CONCURRENCY
// at a time: each authenticates once (its own ed25519 key, made for it: the identity is what makes
// it new, and an ed25519 key costs ~50 µs), then the round's deployment is created for them and each
// polls `next` (200, the deployment), PUTs its inventory and a `success` status for the deployment
// (204), and goes away. Each device uses its own connection: one for the auth request, one
// keep-alive connection for the three calls after it. After each round: the gateway's RSS
// (/proc) and V8 heap used, both right after a full GC forced through the inspector (the gateway runs
// with --inspect=127.0.0.1:0; HeapProfiler.collectGarbage, Runtime.getHeapUsage), the metric series
// (/metrics) and the status JSON's bytes (/api/status). The slopes are bytes per further device:
// over the first rounds, and from BENCH_CHURN_SETTLED (round 5) to the last.
// Not a test: nothing fails on the figures; a device call with an unexpected status is counted.
// Knobs: BENCH_CHURN_ROUND (10000), BENCH_CHURN_ROUNDS (10), BENCH_CHURN_CONCURRENCY (64),
// BENCH_CHURN_SETTLED (5).

const env = (name: string, fallback: number): number => (process.env[name] ? Number(process.env[name]) : fallback);
const print = (line: string): void => void process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const DEVICE_TYPE = 'churn-box';
const INSTALLED = 'churn-0.9';
const OFFERED = 'churn-1.0';

interface Reply {
  status: number;
  body: string;
}

function call(
  base: string,
  agent: http.Agent | false,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: Buffer | string,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method, agent, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Tallies of calls that did not get the answer a device expects, by call and status. */
class Misses {
  readonly counts = new Map<string, number>();
  add(what: string): void {
    this.counts.set(what, (this.counts.get(what) ?? 0) + 1);
  }
  get total(): number {
    return [...this.counts.values()].reduce((a, b) => a + b, 0);
  }
  toString(): string {
    return [...this.counts].map(([k, n]) => `${k}×${n}`).join(' ');
  }
}

interface Authenticated {
  token: string;
  deviceId: string;
  serial: string;
}

const subOf = (token: string): string => JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()).sub;

async function authenticate(base: string, round: number, index: number, misses: Misses): Promise<Authenticated | undefined> {
  const serial = `churn-${round}-${index}`;
  const mac = `02:${[round >> 8, round & 255, index >> 16, (index >> 8) & 255, index & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
  const { privateKey } = generateKeyPairSync('ed25519');
  const body = authBodySignedBy({ mac, serial }, privateKey);
  try {
    const r = await call(
      base,
      false,
      'POST',
      AUTH,
      { 'Content-Type': 'application/json', 'X-MEN-Signature': body.signature, 'Content-Length': String(body.raw.length) },
      body.raw,
    );
    if (r.status !== 200) return void misses.add(`auth ${r.status}`);
    return { token: r.body, deviceId: subOf(r.body), serial };
  } catch (err) {
    misses.add(`auth ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

async function report(base: string, device: Authenticated, deploymentId: string, misses: Misses): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const bearer = { Authorization: `Bearer ${device.token}` };
  const json = { ...bearer, 'Content-Type': 'application/json' };
  try {
    const next = await call(base, agent, 'GET', `${NEXT}?artifact_name=${INSTALLED}&device_type=${DEVICE_TYPE}`, bearer);
    if (next.status !== 200) misses.add(`next ${next.status}`);
    const inventory = JSON.stringify([
      { name: 'device_type', value: DEVICE_TYPE },
      { name: 'artifact_name', value: INSTALLED },
      { name: 'serial', value: device.serial },
      { name: 'kernel', value: 'Linux version 6.1.0-churn (builder@ci) #1 SMP PREEMPT' },
      { name: 'mender_client_version', value: '3.4.0' },
      { name: 'network_interfaces', value: ['eth0', 'wlan0'] },
    ]);
    const inv = await call(base, agent, 'PUT', INVENTORY, json, inventory);
    if (inv.status !== 200) misses.add(`inventory ${inv.status}`);
    const status = await call(
      base,
      agent,
      'PUT',
      `/api/devices/v1/deployments/device/deployments/${deploymentId}/status`,
      json,
      '{"status":"success"}',
    );
    if (status.status !== 204) misses.add(`status ${status.status}`);
  } catch (err) {
    misses.add(`report ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  } finally {
    agent.destroy();
  }
}

/** Run `work(i)` for i in [0, n), at most `concurrency` at a time. */
async function pool<T>(n: number, concurrency: number, work: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(n);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      out[i] = await work(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, lane));
  return out;
}

interface Sample {
  round: number;
  identities: number;
  rss: number;
  heap: number;
  series: number;
  statusBytes: number;
  statusDevices: number;
  journalDevices: number;
  seconds: number;
  misses: string;
  load: string;
}

async function sample(
  gw: QuietGateway,
  admin: string,
  inspector: string,
): Promise<Omit<Sample, 'round' | 'identities' | 'seconds' | 'misses'>> {
  const heap = await heapAfterGc(inspector);
  const rss = rssBytes(gw.proc.process.pid!);
  const metrics = await call(admin, false, 'GET', '/metrics', {});
  const status = await call(admin, false, 'GET', '/api/status', {});
  const snapshot = JSON.parse(status.body) as { devices: unknown[]; journal: { devices: number } };
  return {
    rss,
    heap,
    series: metrics.body.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length,
    statusBytes: Buffer.byteLength(status.body),
    statusDevices: snapshot.devices.length,
    journalDevices: snapshot.journal.devices,
    load: loadAverage().split(' ')[0],
  };
}

/** Wait for a line of the gateway's output; returns the first capture group of the last such line
 * (bin/gateway.js starts again in place with its young-generation flag: the inspector's second
 * address is the live one). */
async function fromOutput(gw: QuietGateway, pattern: RegExp, what: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const m = [...gw.proc.output().matchAll(new RegExp(pattern, 'g'))].at(-1);
    if (m) return m[1];
    await sleep(100);
  }
  throw new Error(`the gateway did not log ${what}\n${gw.proc.output()}`);
}

const mb = (b: number): string => (b / 1e6).toFixed(1);
const perDevice = (a: Sample, b: Sample, pick: (s: Sample) => number): string =>
  b.identities === a.identities ? '–' : ((pick(b) - pick(a)) / (b.identities - a.identities)).toFixed(0);

function printSlopes(samples: Sample[], settled: number, out: (l: string) => void = print): void {
  const last = samples[samples.length - 1];
  const at = (round: number) => samples.find((s) => s.round === round);
  const slope = (a: Sample | undefined, b: Sample | undefined, label: string): void => {
    if (!a || !b || a === b) return;
    out(
      `| ${label} (rounds ${a.round}→${b.round}, ${a.identities}→${b.identities} identities) | ${perDevice(a, b, (s) => s.rss)} | ${perDevice(a, b, (s) => s.heap)} | ${perDevice(a, b, (s) => s.statusBytes)} |`,
    );
  };
  out('\n| bytes per further device | RSS | V8 heap after GC | status JSON |');
  out('|---|---|---|---|');
  slope(at(0), at(1), 'first round');
  slope(at(1), at(Math.min(settled, last.round)), 'first rounds');
  if (last.round > settled) slope(at(settled), last, 'after the caps');
}

async function main(): Promise<void> {
  const perRound = env('BENCH_CHURN_ROUND', 10_000);
  const rounds = env('BENCH_CHURN_ROUNDS', 10);
  const concurrency = env('BENCH_CHURN_CONCURRENCY', 64);
  const settled = env('BENCH_CHURN_SETTLED', 5);
  const dir = mkdtempSync(join(tmpdir(), 'bench-churn-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

  const store = await startS3Store();
  let server: MenderServer | undefined;
  let gw: QuietGateway | undefined;
  try {
    server = await startMenderServer({ store, autoAccept: true });
    const artifactFile = join(dir, 'churn.mender');
    writeFileSync(artifactFile, Buffer.alloc(1024, 1));
    await server.uploadArtifact(artifactFile, { name: OFFERED, deviceTypes: [DEVICE_TYPE] });
    gw = await startQuietGateway(
      dir,
      'gateway-churn',
      {
        HTTP: { Enabled: true, Listen: '127.0.0.1:0' },
        UpstreamServer: { URL: server.url },
        Features: {
          ReportJournal: { Enabled: true, Path: join(dir, 'journal') },
          DeviceSystem: { Enabled: true, SystemID: 'churn-site', DefaultInventory: [{ Name: 'site', Value: 'bench' }] },
        },
        Metrics: { Enabled: true, Listen: '127.0.0.1:0' },
        Workers: 1,
      },
      { waitFor: ['http'], timeoutMs: 30_000, nodeOptions: '--inspect=127.0.0.1:0' },
    );
    const base = gw.proc.url('http');
    const admin = `http://${await fromOutput(gw, /msg="?metrics and status page listening"?.*\baddress=(\S+)/, 'the metrics listener')}`;
    const inspector = await fromOutput(gw, /Debugger listening on (ws:\/\/\S+)/, 'the inspector address');

    print(`# identity churn: ${rounds} rounds of ${perRound} new devices, ${concurrency} at a time`);
    print(`machine: ${machineLine()}; ${new Date().toISOString()}`);
    print(
      '\n| round | identities | RSS MB | V8 heap MB (after GC) | metric series | status JSON bytes | devices on the page | journal devices | round s | load | unexpected answers |',
    );
    print('|---|---|---|---|---|---|---|---|---|---|---|');
    const samples: Sample[] = [];
    const row = (s: Sample): void => {
      samples.push(s);
      print(
        `| ${s.round} | ${s.identities} | ${mb(s.rss)} | ${mb(s.heap)} | ${s.series} | ${s.statusBytes} | ${s.statusDevices} | ${s.journalDevices} | ${s.seconds.toFixed(0)} | ${s.load} | ${s.misses || '–'} |`,
      );
    };
    row({ round: 0, identities: 0, seconds: 0, misses: '', ...(await sample(gw, admin, inspector)) });

    for (let round = 1; round <= rounds; round++) {
      const t0 = Date.now();
      const misses = new Misses();
      const devices = (await pool(perRound, concurrency, (i) => authenticate(base, round, i, misses))).filter(
        (d): d is Authenticated => d !== undefined,
      );
      // One deployment per round, for the devices of the round; aborted afterwards, so that the
      // emulator's `next` passes it at once for the rounds after.
      const deployment = devices.length
        ? server.createDeployment({ name: `churn-${round}`, artifactName: OFFERED, devices: devices.map((d) => d.deviceId) })
        : undefined;
      if (deployment) await pool(devices.length, concurrency, (i) => report(base, devices[i], deployment.id, misses));
      if (deployment) server.abortDeployment(deployment.id);
      // The emulator records every call with its headers: dropped, it is not what is measured.
      server.calls.length = 0;
      const seconds = (Date.now() - t0) / 1000;
      row({ round, identities: round * perRound, seconds, misses: misses.toString(), ...(await sample(gw, admin, inspector)) });
    }
    printSlopes(samples, settled);
  } finally {
    await gw?.proc.stop();
    await server?.close();
    await store.close();
  }
}

if (require.main === module) runMain('bench-churn', main);
