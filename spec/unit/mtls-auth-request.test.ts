import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { test } from 'node:test';
import { parseAuthRequest, preauthorizationKey, sameKey, verifyAuthSignature } from '../../lib/mtls/auth-request';

// The auth request as the gateway reads it (device-protocol.md §3.1).

const keys = {
  rsa: generateKeyPairSync('rsa', { modulusLength: 2048 }),
  ec: generateKeyPairSync('ec', { namedCurve: 'prime256v1' }),
  ed25519: generateKeyPairSync('ed25519'),
};
const pem = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' }).toString();
const body = (idData: string, pubkey: string) => Buffer.from(JSON.stringify({ id_data: idData, tenant_token: '', pubkey }) + '\n');
const signWith = (raw: Buffer, key: KeyObject) => sign(key.asymmetricKeyType === 'ed25519' ? null : 'sha256', raw, key).toString('base64');

test('parseAuthRequest accepts what the 3.4 client sends, for each key type', () => {
  for (const [type, pair] of Object.entries(keys)) {
    const parsed = parseAuthRequest(body('{"mac":"02:00:00:00:00:01","sn":["a","b"]}', pem(pair.publicKey)));
    assert.ok(parsed.ok, type);
    if (parsed.ok) {
      assert.deepEqual(parsed.request.identity, { mac: '02:00:00:00:00:01', sn: ['a', 'b'] });
      assert.equal(parsed.request.key.asymmetricKeyType, type);
      assert.equal(parsed.request.pubkeyPem, pem(pair.publicKey));
    }
  }
});

test('parseAuthRequest refuses malformed requests with a reason', () => {
  const ec = pem(keys.ec.publicKey);
  const dsa = pem(generateKeyPairSync('x25519').publicKey);
  const cases: [string, Buffer, RegExp][] = [
    ['not JSON', Buffer.from('{"id_data":'), /not JSON/],
    ['an array', Buffer.from('[]'), /must be a JSON object/],
    ['no id_data', Buffer.from(JSON.stringify({ pubkey: ec })), /id_data: cannot be blank/],
    ['id_data an object, not a string', Buffer.from(JSON.stringify({ id_data: { mac: 'x' }, pubkey: ec })), /id_data: cannot be blank/],
    ['id_data not JSON', body('mac=x', ec), /id_data: must be a JSON object/],
    ['id_data an array', body('["x"]', ec), /non-empty JSON object/],
    ['id_data empty', body('{}', ec), /non-empty JSON object/],
    ['no pubkey', Buffer.from(JSON.stringify({ id_data: '{"mac":"x"}' })), /pubkey: cannot be blank/],
    [
      'private key as pubkey',
      body('{"mac":"x"}', keys.ec.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()),
      /must be a PEM PUBLIC KEY/,
    ],
    ['garbage PEM', body('{"mac":"x"}', '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n'), /cannot decode/],
    ['key that cannot sign', body('{"mac":"x"}', dsa), /unsupported key type x25519/],
  ];
  for (const [what, raw, error] of cases) {
    const parsed = parseAuthRequest(raw);
    assert.equal(parsed.ok, false, what);
    if (!parsed.ok) assert.match(parsed.error, error, what);
  }
});

test('verifyAuthSignature: RSA PKCS#1 v1.5, ECDSA DER and Ed25519 over the exact bytes', () => {
  for (const [type, pair] of Object.entries(keys)) {
    const raw = body('{"mac":"x"}', pem(pair.publicKey));
    const sig = signWith(raw, pair.privateKey);
    const cases: [string, Buffer, string | undefined, boolean][] = [
      ['valid', raw, sig, true],
      ['trailing newline removed', raw.subarray(0, raw.length - 1), sig, false],
      ['other key', raw, signWith(raw, keys[type === 'ec' ? 'rsa' : 'ec'].privateKey), false],
      ['missing', raw, undefined, false],
      ['empty', raw, '', false],
      ['not base64', raw, '%%%', false],
      ['truncated', raw, sig.slice(0, 20), false],
    ];
    for (const [what, bytes, signature, expected] of cases) {
      assert.equal(verifyAuthSignature(bytes, pair.publicKey, signature), expected, `${type}: ${what}`);
    }
  }
});

test('sameKey ignores PEM whitespace; preauthorizationKey ignores identity key order', () => {
  const a = createPublicKey(pem(keys.ec.publicKey).replace(/\n/g, '\r\n'));
  assert.equal(sameKey(a, keys.ec.publicKey), true);
  assert.equal(sameKey(keys.rsa.publicKey, keys.ec.publicKey), false);
  const one = parseAuthRequest(body('{"mac":"x","sn":"1"}', pem(keys.ec.publicKey)));
  const two = parseAuthRequest(body('{"sn":"1","mac":"x"}', pem(keys.ec.publicKey).replace(/\n/g, '\r\n')));
  const three = parseAuthRequest(body('{"sn":"1","mac":"x"}', pem(keys.rsa.publicKey)));
  assert.ok(one.ok && two.ok && three.ok);
  if (one.ok && two.ok && three.ok) {
    assert.equal(preauthorizationKey(one.request), preauthorizationKey(two.request));
    assert.notEqual(preauthorizationKey(one.request), preauthorizationKey(three.request));
  }
});

test("parseAuthRequest refuses a key deviceauth's Go decoder would read as id_data, pubkey or tenant_token", () => {
  const ec = pem(keys.ec.publicKey);
  const own = JSON.stringify('{"mac":"own"}');
  const victim = JSON.stringify('{"mac":"victim"}');
  const refused: [string, string, RegExp][] = [
    [
      'ID_DATA after id_data',
      `{"id_data":${own},"pubkey":${JSON.stringify(ec)},"ID_DATA":${victim}}`,
      /"ID_DATA" differs from id_data only in case/,
    ],
    ['Id_Data before id_data', `{"Id_Data":${victim},"id_data":${own},"pubkey":${JSON.stringify(ec)}}`, /"Id_Data" differs from id_data/],
    ['PubKey', `{"id_data":${own},"pubkey":${JSON.stringify(ec)},"PubKey":"x"}`, /"PubKey" differs from pubkey/],
    ['pubkey with the Kelvin sign', `{"id_data":${own},"pubkey":${JSON.stringify(ec)},"pub\\u212Aey":"x"}`, /differs from pubkey/],
    ['Tenant_Token', `{"id_data":${own},"pubkey":${JSON.stringify(ec)},"Tenant_Token":"t"}`, /"Tenant_Token" differs from tenant_token/],
    ['an escaped upper-case letter', `{"id_data":${own},"pubkey":${JSON.stringify(ec)},"\\u0049d_data":${victim}}`, /"Id_data" differs/],
  ];
  for (const [what, raw, error] of refused) {
    const parsed = parseAuthRequest(Buffer.from(raw));
    assert.equal(parsed.ok, false, what);
    if (!parsed.ok) assert.match(parsed.error, error, what);
  }
  // Exact keys, repeated: JSON.parse and Go both keep the last value, so both read the same.
  const accepted: [string, string, string][] = [
    ['exact keys', `{"id_data":${own},"tenant_token":"","pubkey":${JSON.stringify(ec)}}`, 'own'],
    ['id_data twice', `{"id_data":${victim},"pubkey":${JSON.stringify(ec)},"id_data":${own}}`, 'own'],
    ['another key in another case', `{"id_data":${own},"pubkey":${JSON.stringify(ec)},"MAC":"x","Extra":1}`, 'own'],
  ];
  for (const [what, raw, mac] of accepted) {
    const parsed = parseAuthRequest(Buffer.from(raw));
    assert.ok(parsed.ok, what);
    if (parsed.ok) assert.equal(parsed.request.identity.mac, mac, what);
  }
});
