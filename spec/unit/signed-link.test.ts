import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createLinkSigner, formatExpire, linkError } from '../../lib/artifacts/signed-link';
import { ARTIFACT_LINK_PREFIX } from '../../lib/device-api';

const secret = Buffer.from('KDbQ+Z9asYtPdRQoakM5lGs6xgkWyNx4', 'base64');
const signer = createLinkSigner({ secret, gatewayUrl: 'https://gateway.example.com/' });
const origin =
  'https://s3.example.com/mender-artifact-storage/tenant/3f1c?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&response-content-disposition=attachment%3B%20filename%3D%22r1.mender%22&X-Amz-Signature=deadbeef';
const now = new Date('2026-03-01T10:00:00Z');
const expiresAt = new Date('2026-03-01T11:00:00.750Z');
const link = signer.mint(origin, expiresAt);
const target = link.slice('https://gateway.example.com'.length);
const path = target.slice(0, target.indexOf('?'));
const token = path.slice(ARTIFACT_LINK_PREFIX.length);
const expire = formatExpire(expiresAt);
const signature = new URL(link).searchParams.get('x-men-signature')!;

test('a minted link sits on GatewayURL under the artifact prefix, outside /api/devices/', () => {
  assert.ok(link.startsWith(`https://gateway.example.com${ARTIFACT_LINK_PREFIX}`));
  assert.ok(!ARTIFACT_LINK_PREFIX.startsWith('/api/devices/'));
  assert.equal(expire, '2026-03-01T11:00:00Z');
  assert.match(signature, /^[A-Za-z0-9_-]{43}$/);
  // Mender's own dialect: query parameter names
  assert.deepEqual([...new URL(link).searchParams.keys()], ['x-men-expire', 'x-men-signature']);
});

test('a minted link verifies and yields the origin URL unchanged', () => {
  const check = signer.verify(target, now);
  assert.ok(check.ok);
  assert.equal(check.origin.href, origin);
  assert.equal(check.expiresAt.toISOString(), '2026-03-01T11:00:00.000Z');
});

test('another replica (same secret, other instance) verifies it; another secret does not', () => {
  const replica = createLinkSigner({ secret: Buffer.from(secret), gatewayUrl: 'https://other.example.com' });
  assert.equal(replica.verify(target, now).ok, true);
  const stranger = createLinkSigner({ secret: Buffer.alloc(32, 1), gatewayUrl: 'https://gateway.example.com' });
  assert.deepEqual(reason(stranger.verify(target, now)), 'forged');
});

test('GatewayURL with a path prefix keeps it', () => {
  const prefixed = createLinkSigner({ secret, gatewayUrl: 'https://gw.example.com/edge' });
  assert.ok(prefixed.mint(origin, expiresAt).startsWith(`https://gw.example.com/edge${ARTIFACT_LINK_PREFIX}`));
});

const otherSig = createHmac('sha256', Buffer.alloc(32, 9)).update('x').digest('base64url');
const otherToken = Buffer.from('https://evil.example.net/x').toString('base64url');
const flip = (s: string) => (s[0] === 'A' ? 'B' : 'A') + s.slice(1);

const cases: [name: string, target: string, at: Date, expected: 'ok' | 'malformed' | 'incomplete' | 'forged' | 'expired'][] = [
  ['valid', target, now, 'ok'],
  ['valid one second before expiry', target, new Date('2026-03-01T10:59:59Z'), 'ok'],
  ['expired at the second', target, new Date('2026-03-01T11:00:00Z'), 'expired'],
  ['expired long ago', target, new Date('2027-01-01T00:00:00Z'), 'expired'],
  [
    'expire pushed later (signature covers it)',
    `${path}?x-men-expire=2099-01-01T00%3A00%3A00Z&x-men-signature=${signature}`,
    now,
    'forged',
  ],
  [
    'origin swapped (signature covers it)',
    `${ARTIFACT_LINK_PREFIX}${otherToken}?x-men-expire=${encodeURIComponent(expire)}&x-men-signature=${signature}`,
    now,
    'forged',
  ],
  ['signature from another key', `${path}?x-men-expire=${encodeURIComponent(expire)}&x-men-signature=${otherSig}`, now, 'forged'],
  [
    'signature one character changed',
    `${path}?x-men-expire=${encodeURIComponent(expire)}&x-men-signature=${flip(signature)}`,
    now,
    'forged',
  ],
  ['signature too long', `${path}?x-men-expire=${encodeURIComponent(expire)}&x-men-signature=${signature}A`, now, 'forged'],
  [
    'signature with foreign characters',
    `${path}?x-men-expire=${encodeURIComponent(expire)}&x-men-signature=${signature.slice(0, 42)}%2B`,
    now,
    'forged',
  ],
  [
    'signature truncated',
    `${path}?x-men-expire=${encodeURIComponent(expire)}&x-men-signature=${signature.slice(0, 20)}`,
    now,
    'incomplete',
  ],
  ['signature empty', `${path}?x-men-expire=${encodeURIComponent(expire)}&x-men-signature=`, now, 'incomplete'],
  ['signature missing', `${path}?x-men-expire=${encodeURIComponent(expire)}`, now, 'incomplete'],
  ['query cut off', path, now, 'incomplete'],
  ['token truncated', `${path.slice(0, -10)}${target.slice(target.indexOf('?'))}`, now, 'forged'],
  ['expire not RFC 3339 (signed by someone with no key)', `${path}?x-men-expire=tomorrow&x-men-signature=${signature}`, now, 'forged'],
  ['duplicated parameter', `${target}&x-men-signature=${signature}`, now, 'malformed'],
  ['extra parameter', `${target}&tenant_id=1`, now, 'malformed'],
  ['bad percent-encoding', `${path}?x-men-expire=%E0%A4%A&x-men-signature=${signature}`, now, 'malformed'],
  [
    'dot-dot segment',
    `${ARTIFACT_LINK_PREFIX}../../api/devices/v1/x?x-men-expire=${encodeURIComponent(expire)}&x-men-signature=${signature}`,
    now,
    'malformed',
  ],
  [
    'encoded slash',
    `${ARTIFACT_LINK_PREFIX}${token.slice(0, 10)}%2F${token.slice(10)}${target.slice(target.indexOf('?'))}`,
    now,
    'malformed',
  ],
  ['encoded NUL', `${path}%00${target.slice(target.indexOf('?'))}`, now, 'malformed'],
  ['extra path segment', `${path}/file.mender${target.slice(target.indexOf('?'))}`, now, 'malformed'],
  ['base64 padding', `${path}==${target.slice(target.indexOf('?'))}`, now, 'malformed'],
  ['empty token', `${ARTIFACT_LINK_PREFIX}?x-men-expire=${encodeURIComponent(expire)}&x-men-signature=${signature}`, now, 'malformed'],
  [
    'overlong token',
    `${ARTIFACT_LINK_PREFIX}${'A'.repeat(9000)}?x-men-expire=${encodeURIComponent(expire)}&x-men-signature=${signature}`,
    now,
    'malformed',
  ],
  ['other prefix', `/api/devices/v1/${token}${target.slice(target.indexOf('?'))}`, now, 'malformed'],
];

for (const [name, t, at, expected] of cases) {
  test(`verify: ${name} → ${expected}`, () => {
    assert.equal(reason(signer.verify(t, at)), expected);
  });
}

test('a signed token that is not a URL is refused (only a key holder could make one)', () => {
  const notUrl = signer.mint('not a url', expiresAt);
  assert.equal(reason(signer.verify(notUrl.slice('https://gateway.example.com'.length), now)), 'malformed');
});

test('failures become 403 GatewayErrors: LINK_EXPIRED for expiry, LINK_INVALID otherwise', () => {
  const expired = signer.verify(target, new Date('2027-01-01T00:00:00Z'));
  const forged = signer.verify(`${path}?x-men-expire=${encodeURIComponent(expire)}&x-men-signature=${otherSig}`, now);
  assert.ok(!expired.ok && !forged.ok);
  assert.equal(linkError(expired).code, 'LINK_EXPIRED');
  assert.equal(linkError(expired).status, 403);
  assert.equal(linkError(forged).code, 'LINK_INVALID');
  assert.equal(linkError(forged).status, 403);
});

test('a secret shorter than 16 bytes is refused at startup', () => {
  assert.throws(() => createLinkSigner({ secret: Buffer.alloc(8), gatewayUrl: 'https://gw' }), /SignatureSecret/);
});

function reason(check: ReturnType<typeof signer.verify>): string {
  return check.ok ? 'ok' : check.reason;
}

test('across a clock step: a link is honoured until its written expiry, never for longer than LinkExpireDuration from now', () => {
  const hour = 3600_000;
  const day = 24 * hour;
  const capped = createLinkSigner({ secret, gatewayUrl: 'https://gateway.example.com', lifetimeMs: hour });
  const minted = capped.mint(origin, new Date(now.getTime() + hour)).slice('https://gateway.example.com'.length);
  assert.equal(capped.verify(minted, now).ok, true);
  // Stepped forward a day: past its written expiry (the device's next poll gets a fresh link).
  assert.equal(reason(capped.verify(minted, new Date(now.getTime() + day))), 'expired');
  // Stepped back a minute (replicas' clocks): still honoured; back a day: it would live 25 hours, refused.
  assert.equal(capped.verify(minted, new Date(now.getTime() - 60_000)).ok, true);
  const back = capped.verify(minted, new Date(now.getTime() - day));
  assert.equal(reason(back), 'not-yet-valid');
  assert.ok(!back.ok && linkError(back).status === 403);
  // Without a lifetime (a signer that only checks), the written expiry alone.
  assert.equal(signer.verify(minted, new Date(now.getTime() - day)).ok, true);
});
