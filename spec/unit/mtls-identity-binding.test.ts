import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { authSetsOf, deviceIdOf, judgeHolding, type HeldAuthSet } from '../../lib/mtls/held-identity';
import { certificateNames, checkIdentityBinding, parseSubjectAltName } from '../../lib/mtls/identity-binding';

// Identity binding (the certificate's CN, SAN or serial against an id_data attribute) and the
// judgement of what deviceauth holds for an identity, as pure functions.

let dir: string;
let odd: X509Certificate;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'identity-binding-'));
  // A subject Node prints with escapes (`\,`, `\"`, ` + ` between the CNs of one RDN), and SANs
  // it has to quote; made by openssl as a CA might.
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(dir, 'k.pem'),
      '-out',
      join(dir, 'c.pem'),
      '-days',
      '1',
      '-multivalue-rdn',
      '-subj',
      '/O=Acme, Inc./CN=second+CN=a,b"c',
      '-set_serial',
      '0x00FF01',
      '-addext',
      'subjectAltName=DNS:dev-1.example, email:dev@example.com, URI:urn:dev:1, IP:10.0.0.7, otherName:1.2.3.4;UTF8:02:00:00:00:00:01',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  odd = new X509Certificate(readFileSync(join(dir, 'c.pem')));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('CN: every CN of the subject, unescaped; SAN: DNS, e-mail, URI and IP names, never othername', () => {
  assert.deepEqual(certificateNames(odd, 'CN').sort(), ['a,b"c', 'second']);
  assert.deepEqual(certificateNames(odd, 'SAN'), ['dev-1.example', 'dev@example.com', 'urn:dev:1', '10.0.0.7']);
});

const BINDINGS: [string, 'CN' | 'SAN' | 'serial', Record<string, unknown>, boolean][] = [
  ['a CN with a comma and a quote', 'CN', { id: 'a,b"c' }, true],
  ['the other CN of the same RDN', 'CN', { id: 'second' }, true],
  ['the escaped form Node prints', 'CN', { id: 'a\\,b\\"c' }, false],
  ['the organisation is not a CN', 'CN', { id: 'Acme, Inc.' }, false],
  ['a DNS name', 'SAN', { id: 'dev-1.example' }, true],
  ['an IP address', 'SAN', { id: '10.0.0.7' }, true],
  ['an othername value', 'SAN', { id: '02:00:00:00:00:01' }, false],
  ['the SAN text with its type', 'SAN', { id: 'DNS:dev-1.example' }, false],
  ['a DNS name of another case', 'SAN', { id: 'DEV-1.example' }, false],
  ['the serial, case and leading zeros aside', 'serial', { id: 'ff01' }, true],
  ['the serial with 0x and colons', 'serial', { id: '0x00:FF:01' }, true],
  ['another serial', 'serial', { id: 'FF02' }, false],
  ['a serial that is not hex', 'serial', { id: 'FF01-' }, false],
  ['a number, not a string', 'serial', { id: 0xff01 }, false],
  ['no such attribute', 'CN', { other: 'second' }, false],
  ['an inherited property', 'CN', { other: 'second' }, false],
];

for (const [what, field, identity, ok] of BINDINGS) {
  test(`binding ${field}: ${what} → ${ok ? 'bound' : 'refused'}`, () => {
    const verdict = checkIdentityBinding(identity, odd, { attribute: what === 'an inherited property' ? 'toString' : 'id', field });
    assert.equal(verdict.ok, ok, JSON.stringify(verdict));
    if (!verdict.ok) {
      assert.match(verdict.reason, /^id_data (attribute "(id|toString)" does not match|has no "(id|toString)" attribute)/);
      for (const value of Object.values(identity)) assert.ok(!verdict.reason.includes(String(value)), 'no value echoed');
    }
  });
}

const SAN_TEXTS: [string, string, [string, string][]][] = [
  [
    'plain list',
    'DNS:a, email:b@c, IP Address:0:0:0:0:0:0:0:1',
    [
      ['DNS', 'a'],
      ['email', 'b@c'],
      ['IP Address', '0:0:0:0:0:0:0:1'],
    ],
  ],
  [
    'a quoted name with a comma stays one name',
    'DNS:"a\\u002c DNS:victim", DNS:b',
    [
      ['DNS', 'a, DNS:victim'],
      ['DNS', 'b'],
    ],
  ],
  ['a quoted name with an escaped quote and backslash', 'URI:"x\\"y\\\\z"', [['URI', 'x"y\\z']]],
  ['an empty text', '', []],
  ['an unterminated quote yields nothing', 'DNS:"a, DNS:b', []],
  ['garbage after a quoted name yields nothing', 'DNS:"a"b, DNS:c', []],
  ['no type yields nothing', 'victim', []],
];

for (const [what, text, names] of SAN_TEXTS) {
  test(`subjectAltName text: ${what}`, () => {
    assert.deepEqual(
      parseSubjectAltName(text).map((n) => [n.type, n.value]),
      names,
    );
  });
}

const own = generateKeyPairSync('ed25519').publicKey;
const ownPem = own.export({ type: 'spki', format: 'pem' }).toString();
// The same key as the server may store it: other line breaks.
const ownRewrapped = ownPem.replace(/\n(?!-)/g, '\r\n');
const otherPem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();

const HOLDINGS: [string, HeldAuthSet[], ReturnType<typeof judgeHolding>][] = [
  ['no auth sets', [], 'unclaimed'],
  ['this key accepted', [{ pubkey: ownRewrapped, status: 'accepted' }], 'admitted'],
  [
    'this key preauthorized beside another accepted (an operator rotation)',
    [
      { pubkey: otherPem, status: 'accepted' },
      { pubkey: ownPem, status: 'preauthorized' },
    ],
    'admitted',
  ],
  ['this key pending, alone', [{ pubkey: ownPem, status: 'pending' }], 'unclaimed'],
  [
    'this key pending, another pending',
    [
      { pubkey: ownPem, status: 'pending' },
      { pubkey: otherPem, status: 'pending' },
    ],
    'unclaimed',
  ],
  [
    'this key pending, another accepted',
    [
      { pubkey: ownPem, status: 'pending' },
      { pubkey: otherPem, status: 'accepted' },
    ],
    'held',
  ],
  ['another key accepted', [{ pubkey: otherPem, status: 'accepted' }], 'held'],
  ['another key preauthorized by the operator', [{ pubkey: otherPem, status: 'preauthorized' }], 'held'],
  ['another key rejected', [{ pubkey: otherPem, status: 'rejected' }], 'held'],
  ['this key rejected', [{ pubkey: ownPem, status: 'rejected' }], 'rejected'],
  [
    'this key rejected and accepted again elsewhere',
    [
      { pubkey: ownPem, status: 'rejected' },
      { pubkey: otherPem, status: 'accepted' },
    ],
    'rejected',
  ],
  ['an unreadable key accepted', [{ pubkey: 'not a key', status: 'accepted' }], 'held'],
];

for (const [what, sets, expected] of HOLDINGS) {
  test(`holding: ${what} → ${expected}`, () => assert.equal(judgeHolding(own, sets), expected));
}

test('device records: the id of a 409, the auth sets of GET …/devices/{id}, undefined for anything else', () => {
  assert.equal(deviceIdOf(Buffer.from('{"id":"d1","identity_data":{"mac":"x"}}')), 'd1');
  assert.equal(deviceIdOf(Buffer.from('{"id":""}')), undefined);
  assert.equal(deviceIdOf(Buffer.from('[{"id":"d1"}]')), undefined);
  assert.equal(deviceIdOf(Buffer.from('not json')), undefined);
  assert.deepEqual(authSetsOf(Buffer.from(`{"id":"d1","auth_sets":[{"id":"a","pubkey":"p","status":"accepted"}]}`)), [
    { pubkey: 'p', status: 'accepted' },
  ]);
  assert.equal(authSetsOf(Buffer.from('{"id":"d1"}')), undefined, 'a record without auth sets is not a list of none');
  assert.equal(authSetsOf(Buffer.from('{"id":"d1","auth_sets":[{"pubkey":"p"}]}')), undefined);
});
