import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, randomBytes, sign, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseCrls, type ParsedCrls } from '../../lib/mtls/crl';
import * as asn1js from 'asn1js';
import { makeCa, makeKey, type CertPair, type KeyType } from '../support/tls-material';

// The mTLS CRL file: real CRLs made by `openssl ca -gencrl`, checked against what openssl itself
// reads from them (serials, lastUpdate, nextUpdate), then damaged in the ways a file can be.

const dir = mkdtempSync(join(tmpdir(), 'gw-crl-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function openssl(args: string[]): string {
  return execFileSync('openssl', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

interface Ca extends CertPair {
  x509: X509Certificate;
}

function ca(name: string, type: KeyType): Ca {
  let pair: CertPair;
  if (type === 'ec') pair = makeCa(dir, name, `/CN=${name}`);
  else {
    pair = { key: makeKey(dir, name, type), cert: join(dir, `${name}.crt`) };
    openssl([
      'req',
      '-x509',
      '-new',
      '-key',
      pair.key,
      '-subj',
      `/CN=${name}`,
      '-days',
      '30',
      '-out',
      pair.cert,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
  }
  return { ...pair, x509: new X509Certificate(readFileSync(pair.cert)) };
}

interface CrlFiles {
  pem: Buffer;
  der: Buffer;
  path: string;
}

let crlCount = 0;
/** `openssl ca -gencrl` over an index.txt that lists `serials` (hex, as written there) revoked. */
function gencrl(issuer: Ca, serials: string[], opts: { args?: string[]; md?: string; crlExt?: string } = {}): CrlFiles {
  const name = `crl${++crlCount}`;
  const index = serials.map((s) => `R\t301231235959Z\t261101120000Z\t${s}\tunknown\t/CN=${s}\n`).join('');
  writeFileSync(join(dir, `${name}.index`), index);
  writeFileSync(join(dir, `${name}.number`), '01\n');
  const cnf = [
    '[ca]',
    'default_ca=CA_default',
    '[CA_default]',
    `database=${name}.index`,
    `crlnumber=${name}.number`,
    `default_md=${opts.md ?? 'default'}`,
    'default_crl_days=30',
    'crl_extensions=crl_ext',
    '[crl_ext]',
    'authorityKeyIdentifier=keyid:always',
    opts.crlExt ?? '',
    '[idp]',
    'fullname=URI:http://ca.test/ca.crl',
  ];
  writeFileSync(join(dir, `${name}.cnf`), cnf.join('\n') + '\n');
  const path = join(dir, `${name}.pem`);
  openssl(['ca', '-gencrl', '-config', `${name}.cnf`, '-keyfile', issuer.key, '-cert', issuer.cert, '-out', path, ...(opts.args ?? [])]);
  openssl(['crl', '-in', path, '-outform', 'DER', '-out', join(dir, `${name}.der`)]);
  return { pem: readFileSync(path), der: readFileSync(join(dir, `${name}.der`)), path };
}

/** What openssl reads from the CRL: the oracle the parser is compared with. */
function opensslView(path: string): { serials: Set<string>; thisUpdate: Date; nextUpdate: Date | null } {
  const dates = openssl(['crl', '-in', path, '-noout', '-lastupdate', '-nextupdate', '-dateopt', 'iso_8601']);
  const date = (field: string): Date | null => {
    const value = new RegExp(`^${field}=(.*)$`, 'm').exec(dates)?.[1];
    assert.ok(value, `openssl printed no ${field}: ${dates}`);
    return value === 'NONE' ? null : new Date(value.replace(' ', 'T'));
  };
  const text = openssl(['crl', '-in', path, '-noout', '-text']);
  const serials = new Set([...text.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => m[1].replace(/^0+(?=.)/, '')));
  return { serials, thisUpdate: date('lastUpdate') as Date, nextUpdate: date('nextUpdate') };
}

function errorOf(parsed: ParsedCrls): string {
  assert.equal(parsed.ok, false, 'expected an error');
  const { error } = parsed as { error: string };
  assert.doesNotMatch(error, /\n/, 'one line');
  return error;
}

// [as written in index.txt, canonical form]: a leading zero nibble, a leading zero byte, the high
// bit set (DER pads it with 00), a 20-byte random-style serial, and 1.
const SERIALS: [string, string][] = [
  ['0A0B', 'A0B'],
  ['00FF', 'FF'],
  ['F1E2D3C4B5A69788', 'F1E2D3C4B5A69788'],
  ['3A5F00C1D2E3F405162738495A6B7C8D9E0F1021', '3A5F00C1D2E3F405162738495A6B7C8D9E0F1021'],
  ['01', '1'],
];

const other = ca('other-ca', 'ec');
const rsaCa = ca('rsa-ca', 'rsa');
const ecCa = ca('ec-ca', 'ec');
const cas: [string, Ca, string | undefined][] = [
  ['RSA sha256', rsaCa, 'sha256'],
  ['RSA sha512', rsaCa, 'sha512'],
  ['EC P-256 sha256', ecCa, 'sha256'],
  ['EC P-256 sha384', ecCa, 'sha384'],
  ['Ed25519', ca('ed-ca', 'ed25519'), undefined],
];

for (const [label, issuer, md] of cas) {
  test(`${label}: serials, dates and issuer, PEM and DER, with and without revocations`, () => {
    for (const serials of [SERIALS, []]) {
      const files = gencrl(
        issuer,
        serials.map(([written]) => written),
        { md },
      );
      const oracle = opensslView(files.path);
      const expected = new Set(serials.map(([, canonical]) => canonical));
      assert.deepEqual(oracle.serials, expected, 'openssl agrees with the table');
      for (const bytes of [files.pem, files.der]) {
        const parsed = parseCrls(bytes, [other.x509, issuer.x509]);
        assert.ok(parsed.ok, JSON.stringify(parsed));
        assert.equal(parsed.crls.length, 1);
        const [crl] = parsed.crls;
        assert.equal(crl.issuer, issuer.x509, 'the CA that verified it, not the first trusted');
        assert.deepEqual(crl.serials, expected);
        assert.deepEqual(crl.thisUpdate, oracle.thisUpdate);
        assert.deepEqual(crl.nextUpdate, oracle.nextUpdate);
        assert.ok(Math.abs(crl.thisUpdate.getTime() - Date.now()) < 3600_000, 'thisUpdate is about now');
      }
    }
  });
}

test('explicit times: UTCTime in the past (an expired CRL still parses), GeneralizedTime after 2049', () => {
  const [, issuer] = cas[2];
  const cases: [string, string, Date, Date][] = [
    ['990601120000Z', '000101000000Z', new Date('1999-06-01T12:00:00Z'), new Date('2000-01-01T00:00:00Z')],
    ['200101000000Z', '20550101000000Z', new Date('2020-01-01T00:00:00Z'), new Date('2055-01-01T00:00:00Z')],
  ];
  for (const [last, next, thisUpdate, nextUpdate] of cases) {
    const files = gencrl(issuer, ['0A0B'], { args: ['-crl_lastupdate', last, '-crl_nextupdate', next] });
    const parsed = parseCrls(files.der, [issuer.x509]);
    assert.ok(parsed.ok, JSON.stringify(parsed));
    assert.deepEqual([parsed.crls[0].thisUpdate, parsed.crls[0].nextUpdate], [thisUpdate, nextUpdate]);
    const oracle = opensslView(files.path);
    assert.deepEqual([oracle.thisUpdate, oracle.nextUpdate], [thisUpdate, nextUpdate]);
  }
});

// Minimal DER writer to re-sign a CRL without nextUpdate (openssl ca always sets one).
function tlv(tag: number, body: Buffer): Buffer {
  const n = body.length;
  const length = n < 0x80 ? Buffer.of(n) : n < 0x100 ? Buffer.of(0x81, n) : Buffer.of(0x82, n >> 8, n & 0xff);
  return Buffer.concat([Buffer.of(tag), length, body]);
}

/** The CertificateList's three elements and the tbsCertList's fields, as asn1js reads them. */
function elements(der: Buffer): { outer: asn1js.AsnType[]; tbs: asn1js.AsnType[] } {
  const parsed = asn1js.fromBER(der);
  assert.equal(parsed.offset, der.length);
  const outer = (parsed.result as asn1js.Sequence).valueBlock.value;
  return { outer, tbs: (outer[0] as asn1js.Sequence).valueBlock.value };
}
const raw = (block: asn1js.AsnType): Buffer => Buffer.from(block.valueBeforeDecodeView);

test('a CRL without nextUpdate (re-signed, and accepted by openssl) gives nextUpdate null', () => {
  const [, issuer] = cas[2];
  const der = gencrl(issuer, ['F1E2D3C4B5A69788']).der;
  const {
    outer: [, algorithm],
    tbs,
  } = elements(der);
  const fields = tbs.filter((field, i) => !(i === 4 && field instanceof asn1js.UTCTime)); // version, sig, issuer, thisUpdate, [nextUpdate]
  assert.equal(fields.length, tbs.length - 1, 'nextUpdate was the fifth field');
  const newTbs = tlv(0x30, Buffer.concat(fields.map(raw)));
  const signature = sign('sha256', newTbs, createPrivateKey(readFileSync(issuer.key)));
  const crl = tlv(0x30, Buffer.concat([newTbs, raw(algorithm), tlv(0x03, Buffer.concat([Buffer.of(0), signature]))]));
  const path = join(dir, 'no-next.der');
  writeFileSync(path, crl);
  assert.match(
    execFileSync('openssl', ['crl', '-inform', 'DER', '-in', path, '-CAfile', issuer.cert, '-noout', '-nextupdate'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
    /nextUpdate=NONE/,
  );
  const parsed = parseCrls(crl, [issuer.x509]);
  assert.ok(parsed.ok, JSON.stringify(parsed));
  assert.equal(parsed.crls[0].nextUpdate, null);
  assert.deepEqual(parsed.crls[0].serials, new Set(['F1E2D3C4B5A69788']));
});

test('two CRLs from two CAs in one PEM file, text around them ignored', () => {
  const [, rsa] = cas[0];
  const [, ed] = cas[4];
  const a = gencrl(rsa, ['0A0B']);
  const b = gencrl(ed, ['00FF', '01']);
  const file = Buffer.concat([Buffer.from('# CA bundle\n'), a.pem, Buffer.from('\nsecond:\n'), b.pem]);
  const parsed = parseCrls(file, [ed.x509, rsa.x509]);
  assert.ok(parsed.ok, JSON.stringify(parsed));
  assert.deepEqual(
    parsed.crls.map((c) => [c.issuer, c.serials]),
    [
      [rsa.x509, new Set(['A0B'])],
      [ed.x509, new Set(['FF', '1'])],
    ],
  );
  assert.equal(errorOf(parseCrls(file, [rsa.x509])), 'CRL 2: not signed by any certificate of the CA file');
});

test('a signature that does not verify: another CA, a flipped signature or TBS byte', () => {
  const [, issuer] = cas[2];
  const der = gencrl(
    issuer,
    SERIALS.map(([s]) => s),
  ).der;
  assert.equal(errorOf(parseCrls(der, [other.x509])), 'CRL 1: not signed by any certificate of the CA file');
  assert.equal(errorOf(parseCrls(der, [])), 'CRL 1: not signed by any certificate of the CA file');
  const serialAt = der.indexOf(Buffer.from('F1E2D3C4B5A69788', 'hex'));
  assert.ok(serialAt > 0);
  for (const at of [der.length - 1, der.length - 20, serialAt, serialAt + 7]) {
    const damaged = Buffer.from(der);
    damaged[at] ^= 0x01;
    assert.equal(errorOf(parseCrls(damaged, [issuer.x509])), 'CRL 1: not signed by any certificate of the CA file', `byte ${at}`);
  }
  assert.ok(parseCrls(der, [issuer.x509]).ok, 'the undamaged CRL verifies');
});

test('truncated at every length: an error, never a throw', () => {
  const [, issuer] = cas[4];
  const { der, pem } = gencrl(issuer, ['0A0B', 'F1E2D3C4B5A69788']);
  for (let n = 0; n < der.length; n++) {
    assert.match(errorOf(parseCrls(der.subarray(0, n), [issuer.x509])), /^(CRL 1: )?not a CRL: /, `${n} bytes`);
  }
  const cut = Buffer.from(pem.toString().replace(/(-----BEGIN X509 CRL-----\n[^\n]+\n)[\s\S]*?(-----END)/, '$1$2'));
  assert.match(errorOf(parseCrls(cut, [issuer.x509])), /^CRL 1: not a CRL: /);
});

test('not a CRL at all: empty, random bytes, a certificate (PEM and DER), bad base64', () => {
  const [, issuer] = cas[2];
  const certDer = issuer.x509.raw;
  const cases: [Buffer, RegExp][] = [
    [Buffer.alloc(0), /^not a CRL: the file is empty$/],
    [Buffer.concat([Buffer.of(0x01), randomBytes(300)]), /^not a CRL: neither PEM nor DER$/],
    [Buffer.concat([Buffer.of(0x30, 0x82, 0x01, 0x00), randomBytes(256)]), /^CRL 1: not a CRL: /],
    [readFileSync(issuer.cert), /^not a CRL: the PEM file holds a CERTIFICATE, no X509 CRL$/],
    [certDer, /^CRL 1: not a CRL: this is a certificate$/],
    [Buffer.from('-----BEGIN X509 CRL-----\nMII*notbase64\n-----END X509 CRL-----\n'), /^not a CRL: a PEM X509 CRL block is not base64$/],
    [Buffer.concat([gencrl(issuer, []).der, Buffer.of(0)]), /^CRL 1: not a CRL: 1 bytes after the CRL$/],
  ];
  for (const [bytes, error] of cases) assert.match(errorOf(parseCrls(bytes, [issuer.x509])), error);
  for (let i = 0; i < 200; i++) errorOf(parseCrls(Buffer.concat([Buffer.of(0x30), randomBytes(i)]), [issuer.x509]));
});

test('refused: RSA-PSS signatures, a critical extension, an outer algorithm unlike the signed one', () => {
  const [, rsa] = cas[0];
  const pss = gencrl(rsa, ['0A0B'], { args: ['-sigopt', 'rsa_padding_mode:pss'] });
  assert.equal(errorOf(parseCrls(pss.der, [rsa.x509])), 'CRL 1: CRL signature algorithm 1.2.840.113549.1.1.10 is not supported');
  const idp = gencrl(rsa, ['0A0B'], { crlExt: 'issuingDistributionPoint=critical,@idp' });
  assert.equal(errorOf(parseCrls(idp.pem, [rsa.x509])), 'CRL 1: not a CRL: critical extension 2.5.29.28 is not supported');

  // sha256WithRSAEncryption (…01 01 0b) relabelled sha512 (…0d) outside the signed part only.
  const der = gencrl(rsa, ['0A0B'], { md: 'sha256' }).der;
  const {
    outer: [, algorithm, signatureValue],
  } = elements(der);
  const algorithmStart = der.length - raw(signatureValue).length - raw(algorithm).length;
  const relabelled = Buffer.from(der);
  const oidEnd = algorithmStart + 2 + 2 + 9 - 1; // SEQUENCE hdr, OID hdr, 9 OID bytes
  assert.equal(relabelled[oidEnd], 0x0b);
  relabelled[oidEnd] = 0x0d;
  assert.equal(
    errorOf(parseCrls(relabelled, [rsa.x509])),
    'CRL 1: not a CRL: signatureAlgorithm differs from the signature field of tbsCertList',
  );
});

// pkijs/asn1js read BER and lenient times and ignore elements their schema does not name; RFC 5280
// asks for DER and exact times, so parseCrls refuses these (each re-signed, so only the check stops it).
test('refused where the ASN.1 library alone would accept: BER lengths, extra elements, impossible or inexact times, version not v2', () => {
  const [, issuer] = cas[2];
  const der = gencrl(issuer, ['0A0B', '00FF']).der;
  const { outer, tbs } = elements(der);
  const key = createPrivateKey(readFileSync(issuer.key));
  const resign = (fields: Buffer[]): Buffer => {
    const newTbs = tlv(0x30, Buffer.concat(fields));
    return tlv(0x30, Buffer.concat([newTbs, raw(outer[1]), tlv(0x03, Buffer.concat([Buffer.of(0), sign('sha256', newTbs, key)]))]));
  };
  const withField = (at: number, field: Buffer): Buffer => resign(tbs.map((f, i) => (i === at ? field : raw(f))));
  assert.ok(parseCrls(resign(tbs.map(raw)), [issuer.x509]).ok, 're-signing alone keeps it valid');
  const body = der.subarray(der[1] === 0x81 ? 3 : 4);
  const cases: [string, Buffer, string][] = [
    ['indefinite length', Buffer.concat([Buffer.of(0x30, 0x80), body, Buffer.of(0, 0)]), 'not a CRL: not DER-encoded'],
    [
      'non-minimal length',
      Buffer.concat([Buffer.of(0x30, 0x83, 0, body.length >> 8, body.length & 0xff), body]),
      'not a CRL: not DER-encoded',
    ],
    [
      'element after signatureValue',
      tlv(0x30, Buffer.concat([...outer.map(raw), Buffer.of(0x05, 0)])),
      'not a CRL: unexpected element after signatureValue',
    ],
    ['element after crlExtensions', resign([...tbs.map(raw), Buffer.of(0x02, 0x01, 0x05)]), 'not a CRL: unexpected element in tbsCertList'],
    ['version 1 (v1) present', withField(0, Buffer.of(0x02, 0x01, 0x00)), 'not a CRL: version is not v2'],
    ['month 13', withField(3, tlv(0x17, Buffer.from('991332120000Z'))), 'not a CRL: thisUpdate is not a valid time: "991332120000Z"'],
    [
      'fractional seconds',
      withField(3, tlv(0x18, Buffer.from('20261201120000.5Z'))),
      'not a CRL: thisUpdate is not a valid time: "20261201120000.5Z"',
    ],
    ['no seconds, no Z', withField(4, tlv(0x17, Buffer.from('2612011200'))), 'not a CRL: nextUpdate is not a valid time: "2612011200"'],
  ];
  for (const [label, bytes, error] of cases) assert.equal(errorOf(parseCrls(bytes, [issuer.x509])), `CRL 1: ${error}`, label);
});
