import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { authKeyOf, IssuedTokens, MAX_ISSUED_TOKENS } from '../../lib/journal/issued-tokens';
import type { JournalEntry } from '../../lib/journal/journal-file';
import { connectRemoteDesk, type ToPrimary, type ToWorker, VERDICT_REFRESH_MS } from '../../lib/journal/journal-ipc';
import type { JournalSlice } from '../../lib/journal/journal-owner';
import { claimsSeenSize, issuedVerdict, KnownTokens, MAX_KNOWN_TOKENS, tokenHash } from '../../lib/journal/known-tokens';
import { ReportJournal } from '../../lib/journal/report-journal';
import { LATEST_AUTH_DEVICES, ReportReplay } from '../../lib/journal/report-replay';
import { createUpstream, type Upstream } from '../../lib/proxy/upstream';
import { captureLog } from '../support/capture-log';
import { testConfig } from '../support/gateway-config';
import { closeServer, listenOnFreePort } from '../support/listen';

// Every map the journal keys by device, token or request stays within its cap under churn far
// past it, and an entry past its age is gone (docs/operations.md, "Bounded state";
// bench/state-sizes.ts measures their bytes at the cap).

const CHURN = 100_000;
const HOUR = 3_600_000;
const jwt = (claims: Record<string, unknown>): string =>
  `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.c2ln`;
const expS = (): number => Math.floor(Date.now() / 1000) + 3600;

/** The monotonic clock every BoundedMap reads by default, moved by the test. */
function monotonic(t: TestContext): { advance(ms: number): void } {
  let now = performance.now();
  t.mock.method(performance, 'now', () => now);
  return {
    advance(ms) {
      now += ms;
    },
  };
}

/** The replay over a journal in which every device has one trusted report waiting. */
function replayOver(upstream: Upstream, maxDevices: number, known: Partial<KnownTokens>): ReportReplay {
  const entry = (device: string): JournalEntry => ({
    seq: 1,
    at: Date.now(),
    device,
    trusted: true,
    kind: 'status',
    method: 'PUT',
    path: '/api/devices/v1/deployments/device/deployments/d1/status',
    headers: { authorization: `Bearer t-${device}` },
    body: Buffer.from('{"status":"installing"}'),
  });
  const journal = {
    maxAgeMs: HOUR,
    maxDevices,
    pendingOf: (device: string) => [entry(device)],
    stats: { queued: 1 },
    expire: async () => undefined,
    devices: () => [],
  };
  return new ReportReplay(journal as unknown as ReportJournal, upstream, captureLog('error').log, known as KnownTokens);
}

test('replay latestAuth: 100,000 devices keep LATEST_AUTH_DEVICES tokens; none past MaxAge', (t) => {
  const clock = monotonic(t);
  let device = '';
  const replay = replayOver({} as Upstream, 10_000, { deviceOf: () => device });
  for (let i = 0; i < CHURN; i++) {
    device = `dev-${i}`;
    replay.noteAuthorization(device, `Bearer token-${i}`);
  }
  assert.equal(replay.stateSizes().latestAuth, LATEST_AUTH_DEVICES);
  clock.advance(HOUR - 1);
  assert.equal(replay.stateSizes().latestAuth, LATEST_AUTH_DEVICES, 'within MaxAge: kept');
  clock.advance(1);
  assert.equal(replay.stateSizes().latestAuth, 0, 'MaxAge on: gone');
  replay.close();
});

test('replay locks: 100,000 devices at once leave none once their requests settled', async () => {
  const replay = replayOver({} as Upstream, 10_000, {});
  let peak = 0;
  const runs = Array.from({ length: CHURN }, (_, i) =>
    replay.withDevice(`dev-${i % 50_000}`, async () => {
      peak = Math.max(peak, replay.stateSizes().locks);
      if (i % 7 === 0) throw new Error('a failed request releases its lock too');
    }),
  );
  await Promise.allSettled(runs);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(peak, 50_000, 'one lock per device in flight');
  assert.equal(replay.stateSizes().locks, 0);
  replay.close();
});

test('replay blocked and deferred: devices far past the cap keep the cap; none past MaxAge', async (t) => {
  let status = 401;
  const upstream = http.createServer((req, res) => {
    req.resume();
    res.writeHead(status).end();
  });
  const port = await listenOnFreePort(upstream);
  const target = createUpstream(testConfig({ UpstreamServer: { URL: `http://127.0.0.1:${port}` } }).UpstreamServer);
  const cap = 100;
  const replay = replayOver(target, cap, { deviceOf: () => undefined, apply: () => undefined });
  try {
    // Over HTTP on loopback: 10x the cap, not 100,000 devices.
    for (let i = 0; i < 10 * cap; i++) assert.equal(await replay.flush(`refused-${i}`), 'blocked');
    assert.equal(replay.stateSizes().blocked, cap);
    status = 500;
    for (let i = 0; i < 10 * cap; i++) assert.equal(await replay.flush(`failing-${i}`), 'deferred');
    assert.equal(replay.stateSizes().deferred, cap);
    const clock = monotonic(t);
    clock.advance(HOUR);
    assert.deepEqual(replay.stateSizes(), { locks: 0, latestAuth: 0, blocked: 0, deferred: 0 });
  } finally {
    replay.close();
    target.close();
    await closeServer(upstream);
  }
});

test('journal queues: a device past maxDevices is refused like a full journal; its reports ended, room again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'journal-devices-'));
  const journal = await ReportJournal.open({ dir, maxBytes: 1 << 20, maxAgeMs: HOUR, maxDevices: 20, log: captureLog('error').log });
  try {
    const report = (device: string, at = Date.now()) => ({
      at,
      device,
      trusted: true,
      kind: 'status' as const,
      method: 'PUT',
      path: '/s',
      headers: {},
      body: Buffer.from('{}'),
    });
    const results = [];
    for (let i = 0; i < 30; i++) results.push(await journal.add(report(`dev-${i}`)));
    assert.deepEqual(results, [...Array(20).fill('journaled'), ...Array(10).fill('full')]);
    assert.equal(await journal.add(report('dev-0')), 'journaled', 'a device already waiting is no new one');
    assert.equal(journal.devices().length, 20);
    // Reports past MaxAge end, and their devices leave.
    await journal.expire(Date.now() + HOUR + 1);
    assert.equal(journal.devices().length, 0);
    assert.equal(await journal.add(report('dev-29')), 'journaled');
  } finally {
    await journal.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('known-good tokens: 100,000 devices keep MAX_KNOWN_TOKENS; a token past its exp is gone at the next sweep', () => {
  let mono = 0;
  const known = new KnownTokens(undefined, captureLog('error').log, true, undefined, undefined, () => mono);
  const now = Date.now();
  for (let i = 0; i < CHURN; i++)
    known.apply({ t: 'accepted', hash: tokenHash(`token-${i}`), device: `dev-${i}`, expiresAt: now + HOUR }, now);
  assert.equal(known.size, MAX_KNOWN_TOKENS);
  assert.equal(known.devices, MAX_KNOWN_TOKENS, 'a device only with a token kept');
  // An hour on, every one of them is past its exp: the next write sweeps them out.
  mono = HOUR;
  known.apply({ t: 'accepted', hash: tokenHash('fresh'), device: 'dev-fresh', expiresAt: now + 3 * HOUR }, now + HOUR);
  assert.equal(known.size, 1);
  assert.equal(known.devices, 1);
});

test('token claims memo: 100,000 tokens keep 4,096 decoded; none two hours after its last use', (t) => {
  const clock = monotonic(t);
  const exp = expS();
  for (let i = 0; i < CHURN; i++) issuedVerdict(jwt({ sub: `dev-${i}`, exp }));
  assert.equal(claimsSeenSize(), 4_096);
  clock.advance(2 * HOUR);
  assert.equal(claimsSeenSize(), 0);
});

test('issued tokens: 100,000 devices keep MAX_ISSUED_TOKENS; a token past its lifetime is gone at the next sweep', () => {
  let mono = 0;
  const tokens = new IssuedTokens(MAX_ISSUED_TOKENS, () => mono);
  const now = 1_800_000_000_000;
  const body = Buffer.from(jwt({ sub: 'dev', exp: now / 1000 + 3600 }));
  for (let i = 0; i < CHURN; i++) tokens.remember(authKeyOf(`{"mac":"${i}"}`, 'PEM'), body, 'application/jwt', now);
  assert.equal(tokens.size, MAX_ISSUED_TOKENS);
  assert.ok(tokens.lookup(authKeyOf(`{"mac":"${CHURN - 1}"}`, 'PEM'), now), 'the newest is served');
  const later = Buffer.from(jwt({ sub: 'dev', exp: now / 1000 + 7200 }));
  mono = 3600_000 - 60_000;
  tokens.remember(authKeyOf('{"mac":"late"}', 'PEM'), later, 'application/jwt', now + 3600_000 - 60_000);
  assert.equal(tokens.size, 1, 'the ones no longer served went');
});

test("a worker's sent verdicts: 100,000 tokens keep 4,096, none a minute on; its waiting requests empty", async () => {
  let answer = true;
  const channel = Object.assign(new EventEmitter(), {
    send(message: ToPrimary, _h?: unknown, _o?: unknown, done?: (err: Error | null) => void): boolean {
      const reply = (m: ToWorker) => setImmediate(() => channel.emit('message', m));
      if (message.type === 'journal-open') reply({ type: 'journal-opened' });
      if (message.type === 'journal-submit' && answer)
        reply({ type: 'journal-answer', id: message.id, answer: { t: 'journaled', status: 204 } });
      done?.(null);
      return true;
    },
  });
  let now = 0;
  const desk = await connectRemoteDesk({} as JournalSlice, channel as unknown as Parameters<typeof connectRemoteDesk>[1], () => now);
  const expiresAt = Date.now() + HOUR;
  for (let i = 0; i < CHURN; i++) desk.noteToken({ t: 'accepted', hash: tokenHash(`token-${i}`), device: `dev-${i}`, expiresAt });
  assert.equal(desk.stateSizes().sentVerdicts, 4_096);
  now += VERDICT_REFRESH_MS;
  assert.equal(desk.stateSizes().sentVerdicts, 0);

  const request = { method: 'PUT', path: '/s', headers: {}, body: Buffer.from('{}') };
  await Promise.all(Array.from({ length: 1_000 }, () => desk.submit({ kind: 'status', request })));
  assert.equal(desk.stateSizes().waiting, 0, 'answered: gone');
  answer = false;
  const unanswered = Array.from({ length: 1_000 }, () => desk.submit({ kind: 'status', request }));
  assert.equal(desk.stateSizes().waiting, 1_000);
  channel.emit('disconnect');
  assert.ok((await Promise.all(unanswered)).every((a) => a.t === 'error'));
  assert.equal(desk.stateSizes().waiting, 0, 'the primary gone: gone');
  desk.close();
});
