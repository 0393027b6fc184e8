import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { bearerToken, issuedVerdict, KnownTokens, tokenHash, verdictOf } from '../../lib/journal/known-tokens';
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
  assert.deepEqual(verdictOf(auth, STATUS, 204), { t: 'accepted', hash: tokenHash(token), device: 'dev-1', expiresAt: exp() * 1000 });
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
  const known = new KnownTokens(undefined, captureLog('error').log, true, 3);
  const tokens = [1, 2, 3, 4].map((i) => jwt({ sub: `dev-${i}`, exp: exp() }));
  for (const t of tokens) known.apply(issuedVerdict(t)!);
  assert.equal(known.size, 3);
  assert.equal(known.deviceOf(`Bearer ${tokens[0]}`), undefined, 'the oldest went');
  assert.equal(known.deviceOf(`Bearer ${tokens[3]}`), 'dev-4');
  assert.equal(known.deviceOf(`Bearer ${tokens[3]}x`), undefined);
  assert.equal(known.deviceOf(`Bearer ${tokens[3]}`, Date.now() + 7200_000), undefined, 'expired');
  assert.equal(known.size, 2);
  known.apply({ t: 'refused', hash: tokenHash(tokens[2]!) });
  assert.equal(known.deviceOf(`Bearer ${tokens[2]}`), undefined);
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
