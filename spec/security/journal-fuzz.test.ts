import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { startMenderServer, type MenderServer } from '../../fixtures/mender-server';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import { startGateway, type RunningGateway } from '../../lib/gateway';
import { captureLog } from '../support/capture-log';
import { makeDeviceCert } from '../support/device-certs';
import { prng } from '../support/fuzz-cases';
import { sendRaw, type RawOutcome } from '../support/fuzz-raw-http';
import { testConfig } from '../support/gateway-config';
import { tlsAgent } from '../support/mtls-device';
import { makeTlsMaterial, type TlsMaterial } from '../support/tls-material';
import { testDevice } from '../integration/journal-harness';

// A seeded fuzz of the Authorization header (and the auth requests' headers and bodies) on the
// routes the journal serves (status, log, inventory, next) and on both auth routes (the
// journal's, without mTLS, and mTLS's, with the attacker's own certificate), with upstream up
// then down: malformed, oversized and duplicated headers, alg none, wrong segment counts, huge
// and non-ASCII subs, a real token altered, header injection. Never a 5xx of the gateway's own
// but the upstream error JSON, never a hang or a crash, and never a report journaled: the same
// forged tokens go upstream (401) first, so none can have become known good by then.

const SEED = 0x25_0001;
const RAW_CASES = 300;
const MTLS_CASES = 60;
const USER = { email: 'gateway@example.com', password: 'journal-fuzz-Pa55' };

let dir: string;
let tls: TlsMaterial;
let store: S3Store;
let server: MenderServer;
let plain: RunningGateway;
let mtls: RunningGateway;
let attackerAgent: https.Agent;
const log = captureLog('debug');

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'journal-fuzz-'));
  tls = makeTlsMaterial(dir);
  store = await startS3Store({});
  server = await startMenderServer({ store, autoAccept: true, users: [USER] });
  const upstream = { URL: server.url, Timeout: '2s' };
  plain = await startGateway(
    testConfig({ UpstreamServer: upstream, Features: { ReportJournal: { Enabled: true, Path: join(dir, 'plain') } } }),
    log.log,
  );
  mtls = await startGateway(
    testConfig({
      HTTP: { Enabled: false },
      HTTPS: { Enabled: true, ServerCertificate: tls.server.cert, ServerKey: tls.server.key },
      UpstreamServer: upstream,
      Features: {
        ReportJournal: { Enabled: true, Path: join(dir, 'mtls') },
        mTLS: { Enabled: true, CACertificate: tls.ca.cert, MenderUsername: USER.email, MenderPassword: USER.password },
      },
    }),
    log.log,
  );
  const cert = makeDeviceCert(dir, 'fuzz-attacker', tls.ca, { keyType: 'ec' });
  attackerAgent = tlsAgent({ ca: tls.ca.cert, cert: cert.cert, key: cert.key }, { keepAlive: true, maxSockets: 4 });
});

after(async () => {
  attackerAgent?.destroy();
  await plain?.close(0);
  await mtls?.close(0);
  await server?.start();
  await server?.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const exp = Math.floor(Date.now() / 1000) + 3600;

/** The forged tokens, made once (seeded) so the ones sent while upstream is up are sent again while it is down. */
function forgedTokens(pick: () => number, victimId: string, victimToken: string, attackerToken: string): string[] {
  const [vh, vp, vs] = victimToken.split('.') as [string, string, string];
  const [ah, , as] = attackerToken.split('.') as [string, string, string];
  const claims = { sub: victimId, exp, 'mender.device': true };
  const flip = (s: string): string => {
    const i = Math.floor(pick() * s.length);
    return s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
  };
  return [
    `${b64({ alg: 'none' })}.${b64(claims)}.`,
    `${b64({ alg: 'none' })}.${b64(claims)}`,
    `${b64({ alg: 'HS256' })}.${b64(claims)}.${randomBytes(32).toString('base64url')}`,
    `${b64({ alg: 'RS256' })}.${b64(claims)}.${vs}`,
    `${vh}.${vp}.${flip(vs)}`,
    `${vh}.${flip(vp)}.${vs}`,
    `${vh}.${b64({ ...JSON.parse(Buffer.from(vp, 'base64url').toString()), exp: exp + 99_999 })}.${vs}`,
    `${ah}.${b64({ ...claims, jti: 'x' })}.${as}`,
    `${vh}.${vp}.${vs}.${vs}`,
    `${vh}.${vp}`,
    `..`,
    `${b64({ alg: 'none' })}.${b64({ ...claims, sub: 'x'.repeat(6000) })}.`,
    `${b64({ alg: 'none' })}.${b64({ ...claims, sub: `${victimId}\u00e9\u540d` })}.`,
    `${b64({ alg: 'none' })}.${b64({ ...claims, sub: `${victimId}\u0000` })}.`,
    `${b64({ alg: 'none' })}.${b64({ ...claims, sub: 42 })}.`,
    `${b64({ alg: 'none' })}.${b64('"victim"')}.`,
    `${b64({ alg: 'none' })}.${b64({ ...claims, exp: 1 })}.`,
    `${b64({ alg: 'none' })}.${b64({ ...claims, sub: victimId, sub2: victimId })}.`,
    `${randomBytes(12).toString('base64url')}.${randomBytes(40).toString('base64url')}.${randomBytes(20).toString('base64url')}`,
    `${vh}.${vp}.${vs}=`,
  ];
}

/** Authorization header lines (raw, CRLF-joined): one, several, or none; each with a forged token somewhere. */
function authorizationLines(pick: () => number, tokens: string[], victimToken: string): string[] {
  const any = (): string => tokens[Math.floor(pick() * tokens.length)]!;
  const variants: (() => string[])[] = [
    () => [`Authorization: Bearer ${any()}`],
    () => [`authorization: bearer ${any()}`],
    () => [`Authorization: Bearer    ${any()}   `],
    () => [`Authorization: Bearer`],
    () => [`Authorization: Bearer `],
    () => [`Authorization: ${any()}`],
    () => [`Authorization: Basic ${b64('admin:admin')}`],
    () => [`Authorization: Bearer ${any()}, Bearer ${victimToken}`],
    () => [`Authorization: Bearer ${any()},${victimToken}`],
    // Duplicates: Node keeps the first Authorization; the victim's real token second changes nothing.
    () => [`Authorization: Bearer ${any()}`, `Authorization: Bearer ${victimToken}`],
    () => [`Authorization: Bearer ${any()}`, `Authorization: Bearer ${any()}`],
    () => [`Authorization: Bearer ${'A'.repeat(12_000 + Math.floor(pick() * 10_000))}`],
    () => [`Authorization: Bearer ${any()}\u00ff\u00fe`],
    () => [`Authorization: Bearer ${any()}\r X-Injected: 1`],
    () => [`Authorization: Bearer ${any()}\n X-Injected: 1`],
    () => [`Authorization: Bearer ${any()}`, ` Bearer ${victimToken}`],
    () => [`Authorization: Bearer ${any()}\u0000`],
    () => [`Authorization: Bearer ${any()}`, `X-MEN-Gateway-Journaled: 1`],
    () => [],
  ];
  return variants[Math.floor(pick() * variants.length)]!();
}

interface Target {
  method: string;
  path: string;
  body: () => string;
}

const TARGETS: Target[] = [
  { method: 'PUT', path: '/api/devices/v1/deployments/device/deployments/fuzz-1/status', body: () => '{"status":"failure"}\n' },
  {
    method: 'PUT',
    path: '/api/devices/v1/deployments/device/deployments/fuzz-1/log',
    body: () => '{"messages":[{"level":"error","message":"fuzz","timestamp":"2026-01-01T00:00:00Z"}]}\n',
  },
  { method: 'PUT', path: '/api/devices/v1/inventory/device/attributes', body: () => '[{"name":"fuzz","value":"1"}]\n' },
  { method: 'PATCH', path: '/api/devices/v1/inventory/device/attributes', body: () => '[{"name":"fuzz","value":"1"}]\n' },
  {
    method: 'POST',
    path: '/api/devices/v1/deployments/device/deployments/next',
    body: () => '{"device_type":"test-device","artifact_name":"a"}',
  },
  { method: 'POST', path: '/api/devices/v2/deployments/device/deployments/next', body: () => '{"device_provides":{}}' },
  { method: 'GET', path: '/api/devices/v1/deployments/device/deployments/next?device_type=test-device&artifact_name=a', body: () => '' },
  {
    method: 'POST',
    path: '/api/devices/v1/authentication/auth_requests',
    body: () => JSON.stringify({ id_data: '{"mac":"02:00:00:25:ff:01"}', pubkey: 'not a key', tenant_token: '' }),
  },
];

const GARBAGE_BODIES = ['', '{', 'null', '[]', '{"status":', '\u00ff\u00fe', 'x'.repeat(70_000)];

function rawRequest(pick: () => number, tokens: string[], victimToken: string): { label: string; bytes: Buffer } {
  const target = TARGETS[Math.floor(pick() * TARGETS.length)]!;
  const body = pick() < 0.8 ? target.body() : GARBAGE_BODIES[Math.floor(pick() * GARBAGE_BODIES.length)]!;
  const auth = authorizationLines(pick, tokens, victimToken);
  const extra = target.path.includes('auth_requests') ? [`X-MEN-Signature: ${pick() < 0.5 ? '' : randomBytes(64).toString('base64')}`] : [];
  const payload = Buffer.from(body, 'latin1');
  const framing = pick() < 0.2 ? ['Transfer-Encoding: chunked'] : [`Content-Length: ${payload.length}`];
  const head = [
    `${target.method} ${target.path} HTTP/1.1`,
    'Host: gateway',
    'Content-Type: application/json',
    ...auth,
    ...extra,
    ...framing,
  ];
  const framed = framing[0]!.startsWith('Transfer')
    ? Buffer.concat([Buffer.from(`${payload.length.toString(16)}\r\n`), payload, Buffer.from('\r\n0\r\n\r\n')])
    : payload;
  const bytes = Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'), framed]);
  return { label: `${target.method} ${target.path} [${auth.map((l) => l.slice(0, 60)).join(' | ')}]`, bytes };
}

/**
 * The invariant of every answer: well-formed, not journaled, no 5xx but the upstream error JSON
 * (or upstream's own 5xx passed on: `upstream` holds the statuses the emulator answered meanwhile).
 */
function check(label: string, outcome: Pick<RawOutcome, 'kind' | 'status' | 'headers' | 'body' | 'detail'>, upstream: number[]): void {
  assert.equal(outcome.kind, 'response', `${label}: ${outcome.kind} ${outcome.detail ?? ''}`);
  const status = outcome.status!;
  assert.equal(outcome.headers?.['x-men-gateway-journaled'], undefined, `${label}: journaled (${status})`);
  if (status >= 500) {
    assert.ok([502, 503, 504].includes(status) || upstream.includes(status), `${label}: ${status}`);
    assert.equal(typeof JSON.parse(outcome.body!.toString()).error, 'string', `${label}: ${status} without the error JSON`);
  }
}

function mtlsRequest(pick: () => number, tokens: string[]): { label: string; send: () => Promise<RawOutcome> } {
  const target = TARGETS[Math.floor(pick() * TARGETS.length)]!;
  const token = tokens[Math.floor(pick() * tokens.length)]!;
  const authorization = [`Bearer ${token}`, `bearer  ${token}`, token, 'Bearer', `Bearer ${token}, Bearer ${token}`][
    Math.floor(pick() * 5)
  ]!;
  const body = pick() < 0.8 ? target.body() : GARBAGE_BODIES[Math.floor(pick() * GARBAGE_BODIES.length)]!;
  const headers: Record<string, string> = { 'content-type': 'application/json', authorization };
  if (target.path.includes('auth_requests')) headers['x-men-signature'] = randomBytes(64).toString('base64');
  const label = `mTLS ${target.method} ${target.path} [${authorization.slice(0, 60)}]`;
  const send = (): Promise<RawOutcome> => {
    const started = Date.now();
    return new Promise<RawOutcome>((resolve) => {
      const req = https.request(
        `https://127.0.0.1:${mtls.addresses.https!.port}${target.path}`,
        { method: target.method, agent: attackerAgent, headers, timeout: 10_000 },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              kind: 'response',
              status: res.statusCode,
              headers: res.headers as Record<string, string>,
              body: Buffer.concat(chunks),
              ms: Date.now() - started,
            }),
          );
        },
      );
      req.on('timeout', () => req.destroy(new Error('hang')));
      req.on('error', (err) => resolve({ kind: 'error', detail: err.message, ms: Date.now() - started }));
      req.end(body);
    });
  };
  return { label, send };
}

it('attack: fuzzed JWTs and headers on the journal and auth routes: no 5xx of its own, no crash, nothing journaled', {
  timeout: 120_000,
}, async () => {
  const base = `http://127.0.0.1:${plain.addresses.http!.port}`;
  const victim = await testDevice(() => base, '02:00:00:25:f0:01');
  const attacker = await testDevice(() => base, '02:00:00:25:f0:02');
  const victimId = server.deviceByIdentity({ mac: victim.mac })!.id;
  const pick = prng(SEED);
  const tokens = forgedTokens(pick, victimId, victim.token, attacker.token);
  const from = log.lines.length;
  let sent = 0;
  /** Run one case; check it with what the emulator answered meanwhile. */
  const run = async (label: string, send: () => Promise<RawOutcome>): Promise<RawOutcome> => {
    const before = server.calls.length;
    const outcome = await send();
    check(
      label,
      outcome,
      server.calls.slice(before).map((c) => c.status),
    );
    sent++;
    return outcome;
  };

  const round = async (rawCount: number, mtlsCount: number): Promise<void> => {
    for (let i = 0; i < rawCount; i++) {
      const { label, bytes } = rawRequest(pick, tokens, victim.token);
      await run(label, () => sendRaw(plain.addresses.http!.port, bytes, { timeoutMs: 10_000, halfClose: false }));
    }
    for (let i = 0; i < mtlsCount; i++) {
      const request = mtlsRequest(pick, tokens);
      await run(request.label, request.send);
    }
  };

  // Upstream up: the forged tokens reach it and are refused; then down: none may be journaled.
  await round(RAW_CASES / 3, MTLS_CASES / 3);
  await server.stop();
  try {
    await round(RAW_CASES - RAW_CASES / 3, MTLS_CASES - MTLS_CASES / 3);
    // Each forged token once more on each report route, sure to have no other header wrong.
    for (const token of tokens) {
      for (const target of TARGETS.slice(0, 4)) {
        const bytes = Buffer.from(
          `${target.method} ${target.path} HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nAuthorization: Bearer ${token}\r\nContent-Length: ${Buffer.byteLength(target.body())}\r\n\r\n${target.body()}`,
        );
        const outcome = await run(`${target.method} ${target.path} Bearer ${token.slice(0, 40)}`, () =>
          sendRaw(plain.addresses.http!.port, bytes, { timeoutMs: 10_000, halfClose: false }),
        );
        if (Buffer.byteLength(token) < 8000) assert.equal(outcome.status, 502, `${token.slice(0, 60)}: ${outcome.status}`);
      }
    }
  } finally {
    await server.start();
  }
  assert.ok(sent >= RAW_CASES + MTLS_CASES, `${sent} cases`);
  const lines = log.lines.slice(from);
  assert.equal(lines.filter((l) => l.includes('msg="report journaled"')).length, 0, 'a fuzzed report was journaled');
  // Still serving: the victim's real token still works through both gateways' routes.
  assert.ok([200, 204].includes((await victim.next()).status));
  const alive = await sendRaw(plain.addresses.http!.port, Buffer.from('GET /api/internal/v1/gateway/alive HTTP/1.1\r\nHost: g\r\n\r\n'), {
    timeoutMs: 5000,
    halfClose: false,
  });
  assert.ok(alive.kind === 'response' && alive.status! < 300, `alive: ${alive.kind} ${alive.status}`);
  assert.doesNotMatch(log.text(), /eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/, 'a token in the log');
});
