import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renewAfter } from '../../lib/mtls/management-session';
import { PreauthorizationCache } from '../../lib/mtls/preauthorization-cache';

// When the management token is renewed, and how long a preauthorization is remembered.

const jwt = (claims: object) => `eyJhbGciOiJSUzI1NiJ9.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;

test('renewAfter: a tenth of the lifetime and a second before it ends, at most a minute and a second, never before half; no exp → until a 401', () => {
  const cases: [string, string, number][] = [
    ['one week token', jwt({ iat: 1000, exp: 1000 + 604800 }), 604800_000 - 61_000],
    ['ten minute token', jwt({ iat: 1000, exp: 1600 }), 600_000 - 61_000],
    ['four second token', jwt({ iat: 1000, exp: 1004 }), 4000 - 1400],
    ['two second token: half its life', jwt({ iat: 1000, exp: 1002 }), 1000],
    // The lifetime is the server's (exp - iat): our wall clock a day off changes nothing.
    ['issued in our future', jwt({ iat: 90_000, exp: 90_600 }), 600_000 - 61_000],
    ['no iat: lifetime from our wall clock', jwt({ exp: 1010 }), 10_000 - 2000],
    ['no iat, exp already past by our clock', jwt({ exp: 900 }), Number.POSITIVE_INFINITY],
    ['exp not after iat', jwt({ iat: 1000, exp: 1000 }), Number.POSITIVE_INFINITY],
    ['no exp', jwt({ iat: 1000 }), Number.POSITIVE_INFINITY],
    ['not a JWT', 'opaque-token', Number.POSITIVE_INFINITY],
    ['payload not JSON', 'a.b.c', Number.POSITIVE_INFINITY],
  ];
  for (const [what, token, expected] of cases) assert.equal(renewAfter(token, 1000_000), expected, what);
});

test('PreauthorizationCache: lifetime, delete, bounded with the oldest going first', () => {
  let now = 0;
  const cache = new PreauthorizationCache(1000, () => now, 3);
  cache.add('a');
  assert.equal(cache.has('a'), true);
  now = 999;
  assert.equal(cache.has('a'), true);
  now = 1000;
  assert.equal(cache.has('a'), false, 'expired at its lifetime');
  assert.equal(cache.size, 0, 'an expired entry is dropped when seen');
  for (const k of ['a', 'b', 'c', 'd']) cache.add(k);
  assert.deepEqual(
    ['a', 'b', 'c', 'd'].map((k) => cache.has(k)),
    [false, true, true, true],
  );
  cache.add('b'); // refreshed: now the newest
  cache.add('e');
  assert.deepEqual(
    ['b', 'c', 'd', 'e'].map((k) => cache.has(k)),
    [true, false, true, true],
  );
  cache.delete('e');
  assert.equal(cache.has('e'), false);
});

test('PreauthorizationCache: an add drops the expired entries it finds first, so devices that left do not stay until the cap', () => {
  let now = 0;
  const cache = new PreauthorizationCache(1000, () => now, 100);
  for (let i = 0; i < 50; i++) cache.add(`left-${i}`);
  now = 500;
  cache.add('recent');
  now = 1200;
  cache.add('new');
  assert.equal(cache.size, 2, 'the 50 expired entries went; the unexpired one stays');
  assert.equal(cache.has('recent'), true);
});

test('PreauthorizationCache: 100,000 devices stay within the cap, and an entry past its lifetime is gone', () => {
  let now = 0;
  const cache = new PreauthorizationCache(3600_000, () => now);
  for (let i = 0; i < 100_000; i++) cache.add(`device-${i}`);
  assert.equal(cache.size, 20_000, 'the default cap');
  assert.equal(cache.has('device-0'), false, 'the oldest went first');
  assert.equal(cache.has('device-99999'), true);
  now = 3600_000;
  assert.equal(cache.has('device-99999'), false, 'a lookup does not extend the lifetime');
  cache.add('next');
  assert.equal(cache.size, 1, 'the expired entries went at the next add');
});
