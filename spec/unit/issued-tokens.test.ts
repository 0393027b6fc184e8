import assert from 'node:assert/strict';
import { test } from 'node:test';
import { authKeyOf, IssuedTokens, jwtExpiry } from '../../lib/journal/issued-tokens';

// The outage token memory: only JWTs with an exp are kept, served until a minute
// before that exp, forgotten when upstream refuses the device.

const jwt = (claims: Record<string, unknown>): string =>
  ['{"alg":"RS256"}', JSON.stringify(claims), 'sig'].map((p, i) => (i < 2 ? Buffer.from(p).toString('base64url') : p)).join('.');

test('jwtExpiry reads exp (s) as ms; anything else is undefined', () => {
  assert.equal(jwtExpiry(jwt({ exp: 1_800_000_000 })), 1_800_000_000_000);
  for (const bad of ['', 'not-a-jwt', jwt({}), jwt({ exp: '1' }), 'a.%%%.c']) assert.equal(jwtExpiry(bad), undefined, bad);
});

test('a token is served until one minute before its exp, dropped at the end of its lifetime; forget drops it', () => {
  let mono = 0;
  const tokens = new IssuedTokens(10, () => mono);
  const key = authKeyOf('{"mac":"02:00:00:00:00:01"}', 'PEM');
  const now = 1_800_000_000_000;
  tokens.remember(key, Buffer.from(jwt({ iat: now / 1000, exp: now / 1000 + 120 })), 'application/jwt', now);
  assert.equal(tokens.lookup(key, now)?.contentType, 'application/jwt');
  mono = 59_000;
  assert.equal(tokens.lookup(key, now + 59_000)?.expiresAt, now + 120_000);
  mono = 60_000;
  assert.equal(tokens.lookup(key, now + 60_000), undefined);
  assert.equal(tokens.size, 0);
  tokens.remember(key, Buffer.from(jwt({ exp: now / 1000 + 3600 })), undefined, now);
  tokens.forget(key);
  assert.equal(tokens.lookup(key, now), undefined);
});

test('across a clock step: not served past exp by the wall clock, kept until its lifetime by the monotonic one', () => {
  let mono = 0;
  const tokens = new IssuedTokens(10, () => mono);
  const key = authKeyOf('{"mac":"02:00:00:00:00:02"}', 'PEM');
  const now = 1_800_000_000_000;
  const day = 86_400_000;
  tokens.remember(key, Buffer.from(jwt({ iat: now / 1000, exp: now / 1000 + 3600 })), 'application/jwt', now);
  mono = 10_000;
  assert.equal(tokens.lookup(key, now + day + 10_000), undefined, 'a day ahead: it looks expired, not served');
  assert.equal(tokens.size, 1, 'but kept');
  assert.ok(tokens.lookup(key, now + 20_000), 'the clock back: served again');
  // The clock a day behind: still gone once it has lived its hour, less the margin.
  mono = 3_540_000;
  assert.equal(tokens.lookup(key, now - day + 3_540_000), undefined);
  assert.equal(tokens.size, 0);
});

test('a body that is not a JWT with exp is not kept; keys differ by identity and by key', () => {
  const tokens = new IssuedTokens();
  tokens.remember('k', Buffer.from('opaque-token'), 'text/plain');
  assert.equal(tokens.size, 0);
  assert.notEqual(authKeyOf('{"mac":"a"}', 'K1'), authKeyOf('{"mac":"a"}', 'K2'));
  assert.notEqual(authKeyOf('{"mac":"a"}', 'K1'), authKeyOf('{"mac":"b"}', 'K1'));
});
