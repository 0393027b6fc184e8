import { X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import type { RevocationList } from './revocation-list';
import type { SerialBlocklist } from './serial-blocklist';
import { BoundedMap } from '../state/bounded-map';

// Who is on the other end of a TLS connection, and may it talk to us. Checked when
// the handshake completes, again on every request, and on every open connection when the CA,
// the blocklist or the CRL changes: a resumed TLS session skips certificate verification, and a
// WebSocket tunnel makes no request after its upgrade (peers-and-performance.md §0.10 and §6;
// nginx CVE-2025-23419 is the same class).

export interface ClientIdentityPolicy {
  /** The certificates of Features.mTLS.CACertificate. */
  trusted: readonly X509Certificate[];
  /** InsecureSkipClientExpireAfter: an expired certificate (NotAfter) is accepted. */
  allowExpired: boolean;
  blocklist?: SerialBlocklist;
  /** Features.mTLS.CRLPath: the CAs' revocation lists. */
  revoked?: RevocationList;
  /**
   * Until this time (monotonic ms, `clock`), OpenSSL's `socket.authorized` may come from a secure
   * context that still holds an older CA (a handshake begun before the swap, or a swap that never
   * happened): the chain is verified by hand against `trusted` instead.
   */
  verifyByHandUntil: number;
  /** Wall-clock ms, for certificate dates (tests pass their own). */
  now?: () => number;
  /** Monotonic ms, for `verifyByHandUntil`: a wall clock stepped by NTP neither ends nor stretches it. */
  clock?: () => number;
}

export type ClientVerdict = { ok: true } | { ok: false; status: 401 | 403; reason: string };

const OK: ClientVerdict = { ok: true };

// A connection's certificate never changes: its chain verdict is made once, at the handshake,
// and reused by every request on it until the CA is replaced. What can change while it lives
// (the clock, the blocklist, the CRL) is checked on every request against what was kept here:
// the earliest NotAfter of the chain, the leaf's serial and each certificate's serial and issuer.
// The listeners refuse TLS renegotiation, so the peer's certificate cannot change; what reads the
// certificate later (admission) gets the handshake's leaf, and checks that the peer's is still
// that one (certificateOf): a connection where it differs is refused for good. Not on every
// request: reading the peer certificate costs 5-20 µs, a tenth of a keep-alive request.
interface Known {
  trusted: readonly X509Certificate[];
  verdict: ClientVerdict;
  /** The leaf verified at the handshake; undefined when refused. */
  leaf?: X509Certificate;
  /** The handshake leaf's SHA-256 fingerprint, as getPeerCertificate() prints it ('' when none). */
  fingerprint: string;
  serial: string;
  /** The earliest NotAfter of the chain, ms. */
  notAfter: number;
  /** Each certificate of the chain under a self-signed root: what a CRL of its issuer may list. */
  links: readonly { serial: string; issuer: string; leaf: boolean }[];
}
const known = new WeakMap<TLSSocket, Known>();

function knownFor(socket: TLSSocket, policy: ClientIdentityPolicy): Known {
  const entry = known.get(socket);
  if (entry?.verdict.ok === false && entry.verdict.reason === CHANGED) return entry;
  if (entry && entry.trusted === policy.trusted) return entry;
  // A verdict made against another CA is never reused: the chain is verified again by hand.
  const fresh = examine(socket, policy, entry !== undefined || monotonic(policy) < policy.verifyByHandUntil);
  // ...of the certificate of the handshake: a different one is refused for good.
  const kept = entry?.fingerprint && fresh.fingerprint !== entry.fingerprint ? swapped(entry) : fresh;
  known.set(socket, kept);
  return kept;
}

const CHANGED = 'client certificate changed after the handshake';

function swapped(entry: Known): Known {
  return { ...refused(CHANGED, entry.trusted), fingerprint: entry.fingerprint };
}

/**
 * The connection's certificate is no longer the one of its handshake (a renegotiation): the
 * record is replaced by a refusal. getPeerCertificate() without the chain: unlike
 * getPeerX509Certificate(), it leaves the intermediates a later re-verification reads.
 */
function changedSinceHandshake(socket: TLSSocket, entry: Known): Known | undefined {
  if (!entry.verdict.ok) return undefined;
  if (socket.getPeerCertificate()?.fingerprint256 === entry.fingerprint) return undefined;
  const refusal = swapped(entry);
  known.set(socket, refusal);
  return refusal;
}

const now = (policy: ClientIdentityPolicy): number => policy.now?.() ?? Date.now();
const monotonic = (policy: ClientIdentityPolicy): number => policy.clock?.() ?? performance.now();

/** Chain and validity: what the TLS handshake decides (a resumed session's NotAfter included). */
export function verifyPeerChain(socket: TLSSocket, policy: ClientIdentityPolicy): ClientVerdict {
  const entry = knownFor(socket, policy);
  return entry.verdict.ok ? stillValid(entry, policy) : entry.verdict;
}

/** Chain, validity, the blocklist and the CRL: what every request must pass. */
export function verifyClient(socket: TLSSocket, policy: ClientIdentityPolicy): ClientVerdict {
  const entry = knownFor(socket, policy);
  if (!entry.verdict.ok) return entry.verdict;
  const valid = stillValid(entry, policy);
  if (!valid.ok) return valid;
  const serial = entry.serial;
  if (policy.blocklist?.has(serial)) return { ok: false, status: 403, reason: `client certificate serial ${serial} is blocklisted` };
  if (policy.revoked) {
    for (const link of entry.links) {
      if (!policy.revoked.has(link.serial, link.issuer)) continue;
      const reason = link.leaf
        ? `client certificate serial ${serial} is revoked by the CA's CRL`
        : `client certificate serial ${serial}: its issuing CA (serial ${link.serial}) is revoked by the CA's CRL`;
      return { ok: false, status: 403, reason };
    }
  }
  return OK;
}

/**
 * The client certificate verified at the handshake of an admitted connection: what admission
 * and logs read, never the peer's current one. Undefined when the connection is not admitted.
 */
export function certificateOf(socket: TLSSocket, policy: ClientIdentityPolicy): X509Certificate | undefined {
  if (!verifyClient(socket, policy).ok) return undefined;
  const entry = known.get(socket);
  return entry && !changedSinceHandshake(socket, entry) ? entry.leaf : undefined;
}

/** The leaf's serial (upper-case hex) once the socket has been verified, for logs. */
export function serialOf(socket: TLSSocket): string | undefined {
  return known.get(socket)?.serial || undefined;
}

/** The earliest NotAfter of the socket's chain (ms), once verified. */
export function notAfterOf(socket: TLSSocket): number | undefined {
  return known.get(socket)?.notAfter;
}

function stillValid(entry: Known, policy: ClientIdentityPolicy): ClientVerdict {
  if (policy.allowExpired || now(policy) <= entry.notAfter) return OK;
  return { ok: false, status: 401, reason: 'client certificate refused: CERT_HAS_EXPIRED' };
}

function refused(reason: string, trusted: readonly X509Certificate[]): Known {
  return { trusted, verdict: { ok: false, status: 401, reason }, fingerprint: '', serial: '', notAfter: 0, links: [] };
}

const NOT_ABOUT_THE_CA = new Set(['INVALID_PURPOSE', 'CERT_NOT_YET_VALID', 'UNHANDLED_CRITICAL_EXTENSION', 'CERT_REJECTED']);
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const ANY_EXTENDED_KEY_USAGE = '2.5.29.37.0';

function examine(socket: TLSSocket, policy: ClientIdentityPolicy, byHand: boolean): Known {
  if (socket.authorized && !byHand) {
    const quick = issuedByTrustedCa(socket, policy);
    if (quick) return quick;
  }
  // getPeerCertificate(true) only: once getPeerX509Certificate() has run, Node 20 no longer
  // returns the intermediates the client sent (the chain a re-verification needs).
  const detail = socket.getPeerCertificate(true);
  if (!detail?.raw) return refused('no client certificate', policy.trusted);
  const leaf = new X509Certificate(detail.raw);
  const refusedHere = (reason: string): Known => ({ ...refused(reason, policy.trusted), fingerprint: detail.fingerprint256 });
  const at = now(policy);
  let path: X509Certificate[] | string;
  if (socket.authorized && !byHand) {
    // OpenSSL verified the chain against the CA in use: the path, linked by names, is what
    // the CRLs are asked about. One that cannot be rebuilt is refused only when a CRL applies.
    path = buildPath(leaf, candidates(detail, policy.trusted), policy.trusted, { signatures: false, at, checkDates: false });
    if (typeof path === 'string' && !policy.revoked) path = [leaf];
  } else {
    const code = socket.authorized ? null : String(socket.authorizationError ?? 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    // OpenSSL reports one error code, not all of them: an expired certificate from a rogue CA
    // may be reported as just CERT_HAS_EXPIRED. So the expired case is verified here again.
    if (code !== null && !byHand && !(policy.allowExpired && code === 'CERT_HAS_EXPIRED'))
      return refusedHere(`client certificate refused: ${code}`);
    // What OpenSSL found wrong with the certificate itself stays wrong whatever the CA.
    if (code !== null && NOT_ABOUT_THE_CA.has(code)) return refusedHere(`client certificate refused: ${code}`);
    path = buildPath(leaf, candidates(detail, policy.trusted), policy.trusted, { signatures: true, at, checkDates: !policy.allowExpired });
  }
  if (typeof path === 'string') return refusedHere(`client certificate refused: ${path}`);
  remember(path, policy.trusted);
  if (socket.authorized && !byHand) learnDirectIssuer(detail, path, policy.trusted);
  return {
    trusted: policy.trusted,
    verdict: OK,
    leaf,
    fingerprint: detail.fingerprint256,
    serial: leaf.serialNumber.toUpperCase(),
    notAfter: Math.min(...path.map((c) => Date.parse(c.validTo))),
    links: path.filter((c) => !selfIssued(c)).map((c) => ({ serial: c.serialNumber.toUpperCase(), issuer: c.issuer, leaf: c === leaf })),
  };
}

// The common fleet: leaves signed directly by a self-signed CA of CACertificate. Once one such
// chain was examined in full, later handshakes under the same issuer name that OpenSSL verified
// take the short way: the leaf as OpenSSL parsed it (getPeerX509Certificate, ~2 µs) and the CA,
// where the full way costs ~0.6 ms (getPeerCertificate(true) builds the whole chain as objects
// and each X509Certificate parse of DER is ~0.2 ms on OpenSSL 3): measured, `make bench` mTLS.
// Per CA set, so a reloaded CA starts afresh. Chains with intermediates keep the full way.
const directIssuers = new WeakMap<readonly X509Certificate[], Map<string, X509Certificate>>();

const issuerKey = (peer: { issuer?: unknown }): string | undefined =>
  typeof peer.issuer === 'object' && peer.issuer !== null ? JSON.stringify(peer.issuer) : undefined;

function learnDirectIssuer(detail: DetailedPeerCertificate, path: readonly X509Certificate[], trusted: readonly X509Certificate[]): void {
  const key = issuerKey(detail);
  const ca = path[1];
  if (key === undefined || path.length !== 2 || !ca || !selfIssued(ca) || !trusted.includes(ca)) return;
  const byName = directIssuers.get(trusted) ?? new Map<string, X509Certificate>();
  directIssuers.set(trusted, byName);
  byName.set(key, ca);
}

function issuedByTrustedCa(socket: TLSSocket, policy: ClientIdentityPolicy): Known | undefined {
  const byName = directIssuers.get(policy.trusted);
  if (!byName) return undefined;
  const peer = socket.getPeerCertificate(); // the leaf alone: no chain is built
  const key = peer?.raw ? issuerKey(peer) : undefined;
  const ca = key === undefined ? undefined : byName.get(key);
  if (!ca) return undefined;
  // Safe to call now: a leaf of this issuer name had no intermediates. Should this one not be
  // the CA's after all (another CA of the same name), the full way below finds the chain from the
  // intermediates seen before, or refuses it.
  const leaf = socket.getPeerX509Certificate();
  if (!leaf || !checkIssued(leaf, ca)) return undefined;
  const serial = leaf.serialNumber.toUpperCase();
  return {
    trusted: policy.trusted,
    verdict: OK,
    leaf,
    fingerprint: leaf.fingerprint256,
    serial,
    notAfter: Math.min(Date.parse(leaf.validTo), Date.parse(ca.validTo)),
    links: [{ serial, issuer: leaf.issuer, leaf: true }],
  };
}

/** The certificates the client sent after its leaf, and the intermediates seen on earlier connections. */
function candidates(leaf: DetailedPeerCertificate, trusted: readonly X509Certificate[]): X509Certificate[] {
  const out: X509Certificate[] = [];
  const seen = new Set<string>([leaf.fingerprint256]);
  let detail = leaf.issuerCertificate;
  while (detail?.raw && !seen.has(detail.fingerprint256)) {
    seen.add(detail.fingerprint256);
    out.push(
      intermediatesSeen.get(detail.fingerprint256) ??
        trusted.find((t) => t.fingerprint256 === detail.fingerprint256) ??
        new X509Certificate(detail.raw),
    );
    detail = detail.issuerCertificate;
  }
  // A resumed TLS session carries the leaf only: its intermediates are the ones its first
  // connection presented (kept below), so an intermediate's revocation still applies.
  for (const c of intermediatesSeen.values()) if (!seen.has(c.fingerprint256)) out.push(c);
  return out;
}

// Intermediates of verified chains, by fingerprint; a fleet has a handful, and only a CA in
// CACertificate can make more. Kept while chains present them: a resumed session (the TLS session
// lifetime, 300 s) needs its first connection's, so a day unseen is long past any use. A parsed
// certificate is ~2 KB of heap and ~6 KB in OpenSSL: ~2 MB at the cap.
const intermediatesSeen = new BoundedMap<string, X509Certificate>({ maxEntries: 256, maxAgeMs: 24 * 3600_000 });

/** Intermediates held, for the tests of the bound. */
export const intermediatesHeld = (): number => intermediatesSeen.size;

function remember(path: readonly X509Certificate[], trusted: readonly X509Certificate[]): void {
  for (const c of path.slice(1)) {
    if (trusted.some((t) => t.fingerprint256 === c.fingerprint256)) continue;
    // Set again when seen again: the age counts from the last chain that presented it.
    intermediatesSeen.set(c.fingerprint256, intermediatesSeen.peek(c.fingerprint256) ?? c);
  }
}

const MAX_DEPTH = 8;

/**
 * The chain from `leaf` up to a self-signed CA of `trusted` (or the last trusted certificate that
 * has no issuer at hand), through `intermediates`: leaf first. With `signatures`, each link is
 * verified (by hand, as OpenSSL would); without, names and key identifiers link them, and a
 * signature decides only between two candidates. `checkDates`: NotBefore always, NotAfter
 * unless false (InsecureSkipClientExpireAfter). Returns the path, or why there is none.
 */
export function buildPath(
  leaf: X509Certificate,
  intermediates: readonly X509Certificate[],
  trusted: readonly X509Certificate[],
  o: { signatures: boolean; at: number; checkDates: boolean },
): X509Certificate[] | string {
  const path: X509Certificate[] = [];
  let current = leaf;
  let anchored = false;
  for (let depth = 0; depth <= MAX_DEPTH; depth++) {
    if (Date.parse(current.validFrom) > o.at) return 'CERT_NOT_YET_VALID';
    // As OpenSSL's "sslclient" purpose: a leaf with extended key usages must allow clientAuth.
    const usages = depth === 0 && o.signatures ? current.keyUsage : undefined;
    if (usages && !usages.includes(CLIENT_AUTH) && !usages.includes(ANY_EXTENDED_KEY_USAGE)) return 'INVALID_PURPOSE';
    if (o.checkDates && Date.parse(current.validTo) < o.at) return 'CERT_HAS_EXPIRED';
    path.push(current);
    const isTrusted = trusted.some((t) => t.fingerprint256 === current.fingerprint256);
    anchored ||= isTrusted;
    if (isTrusted && selfIssued(current)) return path;
    const issuer =
      issuerAmong(current, trusted, o.signatures) ??
      issuerAmong(
        current,
        intermediates.filter((c) => c.ca && !path.includes(c)),
        o.signatures,
      );
    if (!issuer) {
      if (anchored) return path;
      return depth === 0 ? 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' : 'UNABLE_TO_GET_ISSUER_CERT';
    }
    current = issuer;
  }
  return 'CERT_CHAIN_TOO_LONG';
}

function issuerAmong(cert: X509Certificate, pool: readonly X509Certificate[], signatures: boolean): X509Certificate | undefined {
  const named = pool.filter((c) => c !== cert && checkIssued(cert, c));
  if (!signatures && named.length === 1) return named[0];
  return named.find((c) => signedBy(cert, c));
}

function selfIssued(cert: X509Certificate): boolean {
  return cert.subject === cert.issuer && checkIssued(cert, cert);
}

function checkIssued(cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return cert.checkIssued(issuer);
  } catch {
    return false;
  }
}

function signedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** Every certificate of a PEM bundle. */
export function parseCertificates(pem: string): X509Certificate[] {
  return (pem.match(CERT_BLOCK) ?? []).map((block) => new X509Certificate(block));
}
