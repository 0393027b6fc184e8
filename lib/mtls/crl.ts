import { verify, type X509Certificate } from 'node:crypto';
import { normaliseSerial } from '../server/serial-blocklist';
import { children, content, decodeOid, DerError, expect, fail, isTime, parseTime, readTlv, type Tlv } from './der-reader';

// Features.mTLS CRL file: the CA's certificate revocation lists (RFC 5280 section 5),
// read without OpenSSL so a bad file is refused with a reason and the TLS layer only needs the
// revoked serials, which it compares like the serial blocklist.

export interface Crl {
  /** The trusted CA certificate whose public key verified the CRL's signature. */
  issuer: X509Certificate;
  /** Revoked serial numbers, canonical form: upper-case hex, no 0x, no colons, no leading zeros ('0' for zero). */
  serials: Set<string>;
  thisUpdate: Date;
  /** null when the CRL has no nextUpdate */
  nextUpdate: Date | null;
}

export type ParsedCrls = { ok: true; crls: Crl[] } | { ok: false; error: string };

const BOOLEAN = 0x01, INTEGER = 0x02, BIT_STRING = 0x03, OID = 0x06, SEQUENCE = 0x30, EXPLICIT_0 = 0xa0;

// signatureAlgorithm OID → [hash for crypto.verify, the key type that can have made it]
const ALGORITHMS: Record<string, [string | null, string]> = {
  '1.2.840.113549.1.1.5': ['sha1', 'rsa'],
  '1.2.840.113549.1.1.11': ['sha256', 'rsa'],
  '1.2.840.113549.1.1.12': ['sha384', 'rsa'],
  '1.2.840.113549.1.1.13': ['sha512', 'rsa'],
  '1.2.840.10045.4.3.2': ['sha256', 'ec'],
  '1.2.840.10045.4.3.3': ['sha384', 'ec'],
  '1.2.840.10045.4.3.4': ['sha512', 'ec'],
  '1.3.101.112': [null, 'ed25519'],
};

/**
 * One or more CRLs: PEM (any number of `-----BEGIN X509 CRL-----` blocks, other text ignored) or one
 * DER CRL. Every CRL must be signed by one of `trusted` (tried in order; verify with its public key),
 * else the whole file is bad. Never throws: malformed input gives { ok: false, error } with one
 * readable line (e.g. "CRL 2: not signed by any certificate of the CA file", "not a CRL: ...").
 */
export function parseCrls(bytes: Buffer, trusted: readonly X509Certificate[]): ParsedCrls {
  const ders = splitFile(bytes);
  if (typeof ders === 'string') return { ok: false, error: ders };
  const crls: Crl[] = [];
  for (const [i, der] of ders.entries()) {
    let crl: Crl | string;
    try {
      crl = parseOne(der, trusted);
    } catch (err) {
      crl = `not a CRL: ${err instanceof DerError ? err.message : String(err)}`;
    }
    if (typeof crl === 'string') return { ok: false, error: `CRL ${i + 1}: ${crl}` };
    crls.push(crl);
  }
  return { ok: true, crls };
}

function splitFile(bytes: Buffer): Buffer[] | string {
  if (bytes.length === 0) return 'not a CRL: the file is empty';
  const text = bytes.toString('latin1');
  if (!text.includes('-----BEGIN ')) return bytes[0] === SEQUENCE ? [bytes] : 'not a CRL: neither PEM nor DER';
  const blocks = [...text.matchAll(/-----BEGIN X509 CRL-----([^-]*)-----END X509 CRL-----/g)].map((m) => m[1]);
  if (blocks.length === 0) {
    const label = /-----BEGIN ([A-Z0-9 ]{1,40})-----/.exec(text)?.[1] ?? 'block';
    return `not a CRL: the PEM file holds a ${label}, no X509 CRL`;
  }
  if (blocks.some((b) => !/^[A-Za-z0-9+/=\s]+$/.test(b))) return 'not a CRL: a PEM X509 CRL block is not base64';
  return blocks.map((b) => Buffer.from(b, 'base64'));
}

function parseOne(der: Buffer, trusted: readonly X509Certificate[]): Crl | string {
  const outer = expect(readTlv(der, 0, der.length), SEQUENCE, 'CertificateList');
  if (outer.end !== der.length) fail(`${der.length - outer.end} bytes after the CRL`);
  const [tbs, algorithm, signatureValue, extra] = children(der, outer);
  expect(tbs, SEQUENCE, 'tbsCertList');
  expect(algorithm, SEQUENCE, 'signatureAlgorithm');
  expect(signatureValue, BIT_STRING, 'signatureValue');
  if (extra) fail(`unexpected element at byte ${extra.start}`);

  const fields = children(der, tbs);
  let i = 0;
  if (fields[0]?.tag === INTEGER) {
    if (!content(der, fields[i++]).equals(Buffer.of(1))) fail('version is not v2');
  }
  // A certificate's TBS starts with [0] version: say so rather than "expected tag 0x30".
  if (fields[i]?.tag === EXPLICIT_0) fail('this is a certificate');
  const tbsAlgorithm = expect(fields[i++], SEQUENCE, 'signature');
  expect(fields[i++], SEQUENCE, 'issuer');
  const thisUpdate = parseTime(der, fields[i++], 'thisUpdate');
  const nextUpdate = isTime(fields[i]) ? parseTime(der, fields[i++], 'nextUpdate') : null;
  const serials = new Set<string>();
  if (fields[i]?.tag === SEQUENCE) {
    for (const entry of children(der, fields[i++])) {
      const [serial, date, extensions, more] = children(der, expect(entry, SEQUENCE, 'revokedCertificate'));
      const hex = content(der, expect(serial, INTEGER, 'userCertificate')).toString('hex');
      parseTime(der, date, 'revocationDate');
      if (extensions) refuseCritical(der, expect(extensions, SEQUENCE, 'crlEntryExtensions'));
      if (more || hex === '') fail(`bad revokedCertificate at byte ${entry.start}`);
      serials.add(normaliseSerial(hex) as string);
    }
  }
  if (fields[i]?.tag === EXPLICIT_0) {
    const [extensions, more] = children(der, fields[i++]);
    if (more) fail(`unexpected element at byte ${more.start}`);
    refuseCritical(der, expect(extensions, SEQUENCE, 'crlExtensions'));
  }
  if (i !== fields.length) fail(`unexpected element at byte ${fields[i].start}`);

  // The outer algorithm is not covered by the signature: it must repeat the signed one.
  if (!der.subarray(algorithm.start, algorithm.end).equals(der.subarray(tbsAlgorithm.start, tbsAlgorithm.end))) {
    fail('signatureAlgorithm differs from the signature field of tbsCertList');
  }
  const oid = decodeOid(content(der, expect(children(der, algorithm)[0], OID, 'algorithm')));
  const known = ALGORITHMS[oid];
  if (!known) return `CRL signature algorithm ${oid} is not supported`;
  const bits = content(der, signatureValue);
  if (bits.length < 2 || bits[0] !== 0) fail('signatureValue is not whole bytes');
  const signed = der.subarray(tbs.start, tbs.end);
  const issuer = trusted.find((ca) => verifies(known, signed, ca, bits.subarray(1)));
  if (!issuer) return 'not signed by any certificate of the CA file';
  return { issuer, serials, thisUpdate, nextUpdate };
}

function verifies([hash, keyType]: [string | null, string], signed: Buffer, ca: X509Certificate, signature: Buffer): boolean {
  try {
    return ca.publicKey.asymmetricKeyType === keyType && verify(hash, signed, ca.publicKey, signature);
  } catch {
    return false; // a key OpenSSL cannot use for this algorithm is simply not the signer
  }
}

// RFC 5280: a CRL with a critical extension we cannot process (delta CRL, issuing distribution
// point, indirect CRL entries) must not be used; reading it as a full list would miss revocations.
function refuseCritical(der: Buffer, extensions: Tlv): void {
  for (const extension of children(der, extensions)) {
    const [id, critical] = children(der, expect(extension, SEQUENCE, 'extension'));
    const oid = decodeOid(content(der, expect(id, OID, 'extnID')));
    if (critical?.tag === BOOLEAN && content(der, critical)[0] !== 0) fail(`critical extension ${oid} is not supported`);
  }
}
