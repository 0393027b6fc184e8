import { verify, type X509Certificate } from 'node:crypto';
import type * as Asn1js from 'asn1js';
import type { Extension } from 'pkijs';
import { normaliseSerial } from './serial-blocklist';

// pkijs costs ~12 MB RSS once loaded (asn1js alone ~1.3 MB): loaded at the first CRL parsed, so an
// mTLS gateway without a CRLPath never pays for it.
const loadAsn1js = () => require('asn1js') as typeof Asn1js;
const loadPkijs = () => require('pkijs') as typeof import('pkijs');

// Features.mTLS CRL file: the CA's certificate revocation lists (RFC 5280 section 5).
// The ASN.1 is read by pkijs/asn1js, so a bad file is refused with a reason, and the TLS layer only
// needs the revoked serials, which it compares like the serial blocklist. The signature is checked
// with node:crypto over the tbsCertList bytes exactly as they are in the file: synchronous (the
// file is loaded and reloaded synchronously) and the same OpenSSL that runs the handshake.

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

const SEQUENCE = 0x30;

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

/** A structural problem: reported as "not a CRL: <message>". */
class CrlError extends Error {}

function fail(message: string): never {
  throw new CrlError(message);
}

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
      const message = err instanceof Error ? err.message : String(err);
      crl = `not a CRL: ${message.replace(/\s*\n\s*/g, ' ')}`;
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
  const asn1js = loadAsn1js();
  const { CertificateRevocationList } = loadPkijs();
  const asn = asn1js.fromBER(der);
  if (asn.offset === -1) fail(asn.result.error || 'not ASN.1');
  if (asn.offset !== der.length) fail(`${der.length - asn.offset} bytes after the CRL`);
  let crl: InstanceType<typeof CertificateRevocationList>;
  try {
    crl = new CertificateRevocationList({ schema: asn.result });
  } catch (err) {
    // A certificate is the likeliest wrong file: say so rather than "schema not verified".
    if (isCertificate(asn.result)) fail('this is a certificate');
    throw err;
  }
  // RFC 5280 §5.1: a CRL is DER. asn1js reads BER, so refuse what DER does not allow:
  // indefinite or non-minimal lengths (the DER re-encoding would differ).
  if (hasIndefiniteLength(asn.result) || !Buffer.from(asn.result.toBER(false)).equals(der)) fail('not DER-encoded');

  // The schema match allows elements beyond the ones it names: none may be there.
  const outer = elementsOf(asn.result);
  if (outer.length !== 3) fail('unexpected element after signatureValue');
  const [tbs, algorithm] = outer;
  const fields = elementsOf(tbs);
  const hasVersion = fields[0] instanceof asn1js.Integer;
  // RFC 5280 §5.1.2.1: version, when present, MUST be v2 (1).
  if (hasVersion && crl.version !== 1) fail('version is not v2');
  let i = hasVersion ? 3 : 2; // signature, issuer
  const thisUpdate = timeOf(fields[i++], 'thisUpdate');
  const nextUpdate = crl.nextUpdate ? timeOf(fields[i++], 'nextUpdate') : null;
  const serials = new Set<string>();
  // revokedCertificates is a SEQUENCE, crlExtensions a [0]; pkijs leaves an empty list undefined.
  if (fields[i] instanceof asn1js.Sequence) {
    const entries = elementsOf(fields[i++]);
    const revoked = crl.revokedCertificates ?? [];
    if (revoked.length !== entries.length) fail('revokedCertificates do not match the schema');
    for (const [n, entry] of revoked.entries()) {
      const [, date, ...more] = elementsOf(entries[n]);
      if (more.length !== (entry.crlEntryExtensions ? 1 : 0)) fail(`unexpected element in revokedCertificate ${n + 1}`);
      const hex = Buffer.from(entry.userCertificate.valueBlock.valueHexView).toString('hex');
      if (hex === '') fail(`bad revokedCertificate ${n + 1}: empty serial`);
      timeOf(date, 'revocationDate');
      refuseCritical(entry.crlEntryExtensions?.extensions);
      serials.add(normaliseSerial(hex) as string);
    }
  }
  if (crl.crlExtensions) {
    if (elementsOf(fields[i++]).length !== 1) fail('unexpected element in crlExtensions');
    refuseCritical(crl.crlExtensions.extensions);
  }
  if (i !== fields.length) fail('unexpected element in tbsCertList');

  // The outer algorithm is not covered by the signature: it must repeat the signed one, byte for byte.
  const signedAlgorithm = fields[hasVersion ? 1 : 0];
  if (!Buffer.from(algorithm.valueBeforeDecodeView).equals(Buffer.from(signedAlgorithm.valueBeforeDecodeView))) {
    fail('signatureAlgorithm differs from the signature field of tbsCertList');
  }
  const oid = crl.signatureAlgorithm.algorithmId;
  const known = ALGORITHMS[oid];
  if (!known) return `CRL signature algorithm ${oid} is not supported`;
  if (crl.signatureValue.valueBlock.unusedBits !== 0) fail('signatureValue is not whole bytes');
  const signature = Buffer.from(crl.signatureValue.valueBlock.valueHexView);
  const signed = Buffer.from(crl.tbsView);
  const issuer = trusted.find((ca) => verifies(known, signed, ca, signature));
  if (!issuer) return 'not signed by any certificate of the CA file';
  return { issuer, serials, thisUpdate, nextUpdate };
}

function isCertificate(block: Asn1js.AsnType): boolean {
  try {
    new (loadPkijs().Certificate)({ schema: block });
    return true;
  } catch {
    return false;
  }
}

/** The elements inside a constructed block (SEQUENCE, SET, [n] EXPLICIT); none for a primitive one. */
function elementsOf(block: Asn1js.AsnType | undefined): Asn1js.AsnType[] {
  if (!block?.idBlock.isConstructed) return [];
  const value = (block.valueBlock as { value?: unknown }).value;
  return Array.isArray(value) ? value : [];
}

function hasIndefiniteLength(block: Asn1js.AsnType): boolean {
  return block.lenBlock.isIndefiniteForm || elementsOf(block).some(hasIndefiniteLength);
}

// RFC 5280 §5.1.2.4-5 (§4.1.2.5): UTCTime YYMMDDHHMMSSZ (YY 50-99 is 19YY) or GeneralizedTime
// YYYYMMDDHHMMSSZ, whole seconds. asn1js also reads fractions, offsets and impossible dates (it
// rolls month 13 over), so the text must be exactly what the date it read prints as. (Its
// GeneralizedTime extends UTCTime: test for GeneralizedTime.)
function timeOf(block: Asn1js.AsnType | undefined, what: string): Date {
  const asn1js = loadAsn1js();
  if (!(block instanceof asn1js.UTCTime || block instanceof asn1js.GeneralizedTime)) return fail(`${what} is missing`);
  const text = Buffer.from(block.valueBlock.valueHexView).toString('latin1');
  const date = block.toDate();
  const iso = Number.isNaN(date.getTime()) ? '' : date.toISOString();
  const canonical =
    (block instanceof asn1js.GeneralizedTime ? iso.slice(0, 4) : iso.slice(2, 4)) + iso.slice(5, 19).replace(/[-T:]/g, '') + 'Z';
  if (iso === '' || text !== canonical) fail(`${what} is not a valid time: ${JSON.stringify(text.slice(0, 20))}`);
  return date;
}

function verifies([hash, keyType]: [string | null, string], signed: Buffer, ca: X509Certificate, signature: Buffer): boolean {
  try {
    return ca.publicKey.asymmetricKeyType === keyType && verify(hash, signed, ca.publicKey, signature);
  } catch {
    return false; // a key OpenSSL cannot use for this algorithm is simply not the signer
  }
}

// RFC 5280 §5.2, §5.3: a CRL with a critical extension we cannot process (delta CRL, issuing
// distribution point, indirect CRL entries) must not be used; reading it as a full list would miss revocations.
function refuseCritical(extensions: readonly Extension[] | undefined): void {
  for (const extension of extensions ?? []) {
    if (extension.critical) fail(`critical extension ${extension.extnID} is not supported`);
  }
}
