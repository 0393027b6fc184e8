import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { RevocationList } from './revocation-list';
import type { SerialBlocklist } from './serial-blocklist';

// Who is on the other end of a TLS connection, and may it talk to us. Checked when
// the handshake completes and again on every request: a resumed TLS session skips
// certificate verification, so a device revoked after its first handshake would otherwise
// keep going (peers-and-performance.md §0.10 and §6; nginx CVE-2025-23419 is the same class).

export interface ClientIdentityPolicy {
  /** The certificates of Features.mTLS.CACertificate. */
  trusted: readonly X509Certificate[];
  /** InsecureSkipClientExpireAfter: an expired certificate (NotAfter) is accepted. */
  allowExpired: boolean;
  blocklist?: SerialBlocklist;
  /** Features.mTLS.CRLPath: the CA's revocation list. */
  revoked?: RevocationList;
  now?: () => number;
}

export type ClientVerdict = { ok: true } | { ok: false; status: 401 | 403; reason: string };

const OK: ClientVerdict = { ok: true };

// A connection's certificate never changes: its chain verdict is made once, at the handshake,
// and reused by every request on it until the CA is replaced; the certificate is parsed only
// when OpenSSL refused it or a blocklist needs its serial (it was parsed twice per
// handshake and again per request). The blocklist and the CRL, which can change while a
// connection lives, are still consulted on every request.
interface Known {
  policy: ClientIdentityPolicy;
  trusted: readonly X509Certificate[];
  verdict: ClientVerdict;
  serial?: string;
  issuer?: string;
}
const known = new WeakMap<TLSSocket, Known>();

function knownFor(socket: TLSSocket, policy: ClientIdentityPolicy): Known {
  const entry = known.get(socket);
  if (entry && entry.policy === policy && entry.trusted === policy.trusted) return entry;
  const fresh: Known = { policy, trusted: policy.trusted, verdict: peerChainVerdict(socket, policy) };
  known.set(socket, fresh);
  return fresh;
}

/** Chain and validity only: what the TLS handshake decides. */
export function verifyPeerChain(socket: TLSSocket, policy: ClientIdentityPolicy): ClientVerdict {
  return knownFor(socket, policy).verdict;
}

function peerChainVerdict(socket: TLSSocket, policy: ClientIdentityPolicy): ClientVerdict {
  // requestCert: authorized means OpenSSL verified a client certificate against the CA.
  if (socket.authorized) return OK;
  const cert = socket.getPeerX509Certificate();
  if (!cert) return { ok: false, status: 401, reason: 'no client certificate' };
  const code = String(socket.authorizationError ?? 'UNKNOWN');
  // OpenSSL reports one error code, not all of them: an expired certificate from a rogue
  // CA may be reported as just CERT_HAS_EXPIRED. So the expired case is re-verified here.
  if (!(policy.allowExpired && code === 'CERT_HAS_EXPIRED'))
    return { ok: false, status: 401, reason: `client certificate refused: ${code}` };
  const why = chainIgnoringExpiry(cert, presentedChain(socket), policy.trusted, policy.now?.() ?? Date.now());
  if (why) return { ok: false, status: 401, reason: `client certificate refused: ${why}` };
  return OK;
}

/** Chain, validity, the blocklist and the CRL: what every request must pass. */
export function verifyClient(socket: TLSSocket, policy: ClientIdentityPolicy): ClientVerdict {
  const entry = knownFor(socket, policy);
  if (!entry.verdict.ok || (!policy.blocklist && !policy.revoked)) return entry.verdict;
  if (entry.serial === undefined) {
    const cert = socket.getPeerX509Certificate();
    entry.serial = cert?.serialNumber.toUpperCase() ?? '';
    entry.issuer = cert?.issuer ?? '';
  }
  const serial = entry.serial;
  if (policy.blocklist?.has(serial)) return { ok: false, status: 403, reason: `client certificate serial ${serial} is blocklisted` };
  if (policy.revoked?.has(serial, entry.issuer ?? ''))
    return { ok: false, status: 403, reason: `client certificate serial ${serial} is revoked by the CA's CRL` };
  return entry.verdict;
}

/** The intermediates the client sent after its leaf. */
function presentedChain(socket: TLSSocket): X509Certificate[] {
  const out: X509Certificate[] = [];
  let detail = socket.getPeerCertificate(true);
  const seen = new Set<string>();
  while (detail?.raw && !seen.has(detail.fingerprint256)) {
    seen.add(detail.fingerprint256);
    if (out.length > 0 || seen.size > 1) out.push(new X509Certificate(detail.raw));
    detail = detail.issuerCertificate;
  }
  return out;
}

const MAX_DEPTH = 8;

/**
 * With the expiry check off, the chain is checked by hand: each certificate signed by the
 * next, ending at a trusted CA; NotBefore still enforced. Returns why not, or null when it holds.
 */
export function chainIgnoringExpiry(
  leaf: X509Certificate,
  intermediates: readonly X509Certificate[],
  trusted: readonly X509Certificate[],
  now: number,
): string | null {
  let current = leaf;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    if (Date.parse(current.validFrom) > now) return 'CERT_NOT_YET_VALID';
    if (trusted.some((ca) => issuedBy(current, ca))) return null;
    const next = intermediates.find((c) => c.ca && c !== current && issuedBy(current, c));
    if (!next) return depth === 0 ? 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' : 'UNABLE_TO_GET_ISSUER_CERT';
    current = next;
  }
  return 'CERT_CHAIN_TOO_LONG';
}

function issuedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** Every certificate of a PEM bundle. */
export function parseCertificates(pem: string): X509Certificate[] {
  return (pem.match(CERT_BLOCK) ?? []).map((block) => new X509Certificate(block));
}
