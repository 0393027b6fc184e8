import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { EventEmitter } from 'node:events';
import type { JournalSlice } from '../../lib/journal/journal-owner';
import { connectRemoteDesk, type ToPrimary, VERDICT_REFRESH_MS } from '../../lib/journal/journal-ipc';
import { bearerToken, issuedVerdict, KnownTokens, MAX_TOKENS_PER_DEVICE, tokenHash, verdictOf } from '../../lib/journal/known-tokens';
import { captureLog } from '../support/capture-log';

// What makes a device token known good to the journal: a 2xx on a plain device API path, or an
// issued token; never a claim alone. Bounded, expiring, saved as hashes only.

const jwt = (claims: Record<string, unknown>): string =>
  `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.c2ln`;
const exp = (): number => Math.floor(Date.now() / 1000) + 3600;
const STATUS = '/api/devices/v1/deployments/device/deployments/d1/status';

test('a 2xx on a device API path accepts a token, a 401 refuses it; nothing else says anything', () => {
  const token = jwt({ sub: 'dev-1', exp: exp() });
  const auth = `Bearer ${token}`;
  const { lifetime, ...verdict } = verdictOf(auth, STATUS, 204) as { lifetime?: number };
  assert.deepEqual(verdict, { t: 'accepted', hash: tokenHash(token), device: 'dev-1', expiresAt: exp() * 1000 });
  assert.ok(lifetime! > 3590_000 && lifetime! <= 3600_000, 'no iat: what was left of it when first seen');
  assert.deepEqual(verdictOf(auth, `${STATUS}?x=1`, 200)?.t, 'accepted');
  assert.deepEqual(verdictOf(auth, STATUS, 401), { t: 'refused', hash: tokenHash(token) });
  for (const status of [301, 302, 304, 400, 403, 404, 500, 502]) assert.equal(verdictOf(auth, STATUS, status), undefined, String(status));
  for (const path of [
    '/',
    '/ui/',
    '/api/management/v1/useradm/users',
    '/api/devices/v1/authentication/auth_requests',
    '/api/devices/v1/../../ui/',
    '/api/devices/v1/./inventory',
    '/api/devices/v1/%2e%2e/x',
    '/api/devices//v1/x',
    'http://evil/api/devices/v1/inventory/device/attributes',
    // Served on a link signed in its query: upstream never looks at the token there.
    '/api/devices/v1/deployments/download/configuration/5f3c/dev-1/abc',
    '/api/devices/v1/someservice/anything',
  ])
    assert.equal(verdictOf(auth, path, 200), undefined, path);
  for (const header of [undefined, '', 'Bearer', `Basic ${token}`, `Bearer ${token} x`, `Bearer ${token},x`])
    assert.equal(verdictOf(header, STATUS, 200), undefined, String(header));
  // No usable sub, or expired: not accepted.
  for (const t of [jwt({ exp: exp() }), jwt({ sub: 7, exp: exp() }), jwt({ sub: 'a b', exp: exp() }), jwt({ sub: 'x', exp: 1 })])
    assert.equal(verdictOf(`Bearer ${t}`, STATUS, 200), undefined, t);
  assert.equal(bearerToken(`bearer   ${token}`), token);
  assert.equal(issuedVerdict(`${token}\n`)?.t, 'accepted');
});

test('the set: device by exact token, expired dropped, oldest out past the cap', () => {
  let mono = 0;
  const known = new KnownTokens(undefined, captureLog('error').log, true, 3, undefined, () => mono);
  const tokens = [1, 2, 3, 4].map((i) => jwt({ sub: `dev-${i}`, exp: exp() }));
  for (const t of tokens) known.apply(issuedVerdict(t)!);
  assert.equal(known.size, 3);
  assert.equal(known.deviceOf(`Bearer ${tokens[0]}`), undefined, 'the oldest went');
  assert.equal(known.deviceOf(`Bearer ${tokens[3]}`), 'dev-4');
  assert.equal(known.deviceOf(`Bearer ${tokens[3]}x`), undefined);
  // Past its exp by the wall clock (a clock stepped forward): not trusted, but kept.
  assert.equal(known.deviceOf(`Bearer ${tokens[3]}`, Date.now() + 7200_000), undefined, 'expired');
  assert.equal(known.size, 3);
  assert.equal(known.deviceOf(`Bearer ${tokens[3]}`), 'dev-4', 'the clock back: trusted again');
  // Past the time it had left by the monotonic clock: gone, whatever the wall clock says.
  mono = 7200_000;
  assert.equal(known.deviceOf(`Bearer ${tokens[3]}`), undefined);
  assert.equal(known.size, 2);
  known.apply({ t: 'refused', hash: tokenHash(tokens[2]!) });
  assert.equal(known.deviceOf(`Bearer ${tokens[2]}`), undefined);
});

test('a wall clock stepped back never keeps a known token past its lifetime', () => {
  let mono = 0;
  const known = new KnownTokens(undefined, captureLog('error').log, true, 10, undefined, () => mono);
  const issuedAt = Math.floor(Date.now() / 1000);
  const HOUR = 3600_000;
  const token = jwt({ sub: 'dev-1', iat: issuedAt, exp: issuedAt + 3600 });
  const auth = `Bearer ${token}`;
  const wall = issuedAt * 1000;
  known.apply(issuedVerdict(token, wall)!, wall);
  // Half an hour on, the clock is stepped back an hour; the device polls, upstream accepts it.
  mono = HOUR / 2;
  known.apply(verdictOf(auth, STATUS, 204, wall - HOUR / 2)!, wall - HOUR / 2);
  assert.equal(known.deviceOf(auth, wall - HOUR / 2), 'dev-1');
  // An hour after it was issued it is expired, whatever the slow clock says.
  mono = HOUR;
  assert.equal(known.deviceOf(auth, wall - 1), undefined, 'past its lifetime');
  assert.equal(known.size, 0);

  // First seen with the clock already an hour behind: its lifetime, not the two hours the wall clock gives.
  const late = jwt({ sub: 'dev-2', iat: issuedAt, exp: issuedAt + 3600 });
  mono = 10 * HOUR;
  known.apply(issuedVerdict(late, wall - HOUR)!, wall - HOUR);
  mono = 11 * HOUR - 1;
  assert.equal(known.deviceOf(`Bearer ${late}`, wall - 1), 'dev-2');
  mono = 11 * HOUR;
  assert.equal(known.deviceOf(`Bearer ${late}`, wall), undefined, 'an hour after first seen');
});

test('saved as hashes, device ids and expiries in a 0600 file, and loaded again', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'known-tokens-')), 'journal');
  try {
    const log = captureLog('error').log;
    const known = await KnownTokens.load(dir, log, true);
    const token = jwt({ sub: 'dev-9', exp: exp() });
    known.apply(issuedVerdict(token)!);
    await known.flush();
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(join(dir, 'known-tokens')).mode & 0o777, 0o600);
    assert.equal(readFileSync(join(dir, 'known-tokens'), 'utf8'), `${tokenHash(token)} dev-9 ${exp() * 1000}\n`);
    const again = await KnownTokens.load(dir, log, true);
    assert.equal(again.deviceOf(`Bearer ${token}`), 'dev-9');
    // The default journal directory: made, but never its parent.
    const orphan = await KnownTokens.load(join(dir, 'missing', 'journal'), log, false);
    orphan.apply(issuedVerdict(token)!);
    await orphan.flush();
    assert.throws(() => statSync(join(dir, 'missing')));
  } finally {
    rmSync(join(dir, '..'), { recursive: true, force: true });
  }
});

test("a device holds at most MAX_TOKENS_PER_DEVICE tokens, its own least recently used out first; others' stay", () => {
  const known = new KnownTokens(undefined, captureLog('error').log, true, 10);
  const victim = jwt({ sub: 'victim', exp: exp() });
  known.apply(issuedVerdict(victim)!);
  // One device renewing in a loop: 20 distinct tokens, in a set that holds 10.
  const renewals = Array.from({ length: 20 }, (_, i) => jwt({ sub: 'loop', exp: exp(), jti: `j${i}` }));
  for (const t of renewals) known.apply(issuedVerdict(t)!);
  assert.equal(MAX_TOKENS_PER_DEVICE, 3);
  assert.equal(known.tokensOf('loop'), 3);
  assert.equal(known.size, 4);
  assert.equal(known.deviceOf(`Bearer ${victim}`), 'victim', 'the earlier device is still known');
  assert.deepEqual(
    renewals.map((t) => known.deviceOf(`Bearer ${t}`)),
    [...renewals.slice(0, 17).map(() => undefined), 'loop', 'loop', 'loop'],
    'the newest three of the loop are kept',
  );
  // Use refreshes a token within its device: the oldest one, used again, outlives a renewal.
  known.apply(verdictOf(`Bearer ${renewals[17]}`, STATUS, 204)!);
  known.apply(issuedVerdict(jwt({ sub: 'loop', exp: exp(), jti: 'next' }))!);
  assert.equal(known.deviceOf(`Bearer ${renewals[17]}`), 'loop', 'the token in use stayed');
  assert.equal(known.deviceOf(`Bearer ${renewals[18]}`), undefined, 'the least recently used went');
  // A refused token leaves its device's count too.
  known.apply({ t: 'refused', hash: tokenHash(renewals[17]!) });
  assert.equal(known.tokensOf('loop'), 2);
});

test('the global cap goes by use: a token used again is not the oldest', () => {
  const known = new KnownTokens(undefined, captureLog('error').log, true, 3);
  const tokens = [1, 2, 3, 4].map((i) => jwt({ sub: `dev-${i}`, exp: exp() }));
  for (const t of tokens.slice(0, 3)) known.apply(issuedVerdict(t)!);
  known.apply(verdictOf(`Bearer ${tokens[0]}`, STATUS, 204)!); // dev-1 polls
  known.apply(issuedVerdict(tokens[3]!)!);
  assert.equal(known.deviceOf(`Bearer ${tokens[0]}`), 'dev-1', 'used lately: kept');
  assert.equal(known.deviceOf(`Bearer ${tokens[1]}`), undefined, 'least recently used: out');
  assert.equal(known.tokensOf('dev-2'), 0);
});

test('a worker tells the primary of a token in use again at most once a minute', async () => {
  const sent: ToPrimary[] = [];
  const channel = Object.assign(new EventEmitter(), {
    send(message: ToPrimary, _handle?: unknown, _options?: unknown, done?: (err: Error | null) => void): boolean {
      sent.push(message);
      if (message.type === 'journal-open') setImmediate(() => channel.emit('message', { type: 'journal-opened' }));
      done?.(null);
      return true;
    },
  });
  let now = 1_000_000;
  const desk = await connectRemoteDesk({} as JournalSlice, channel as unknown as Parameters<typeof connectRemoteDesk>[1], () => now);
  const verdict = verdictOf(`Bearer ${jwt({ sub: 'dev-1', exp: exp() })}`, STATUS, 204)!;
  const told = () => sent.filter((m) => m.type === 'journal-token').length;
  for (let i = 0; i < 100; i++) desk.noteToken(verdict); // a device's every request
  assert.equal(told(), 1);
  now += VERDICT_REFRESH_MS - 1;
  desk.noteToken(verdict);
  assert.equal(told(), 1, 'within the minute: no IPC');
  now += 1;
  desk.noteToken(verdict);
  desk.noteToken(verdict);
  assert.equal(told(), 2, 'a minute on: refreshed once');
  desk.noteToken({ t: 'refused', hash: verdict.hash });
  desk.noteToken({ t: 'refused', hash: verdict.hash });
  assert.equal(told(), 3, 'a refusal once');
  desk.close();
});
