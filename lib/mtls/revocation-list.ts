import type { X509Certificate } from 'node:crypto';
import { certificateExpiry } from '../observe/certificate-expiry';
import type { Logger } from '../observe/log';
import { normaliseSerial } from './serial-blocklist';
import { readFileBytes, watchLoadedFile, type Loaded } from '../server/watched-file';
import { parseCrls, type Crl } from './crl';

// Features.mTLS.CRLPath (ours): the CA's certificate revocation list. Its serials are
// refused like blocklisted ones, per issuer (serial numbers are unique only within one CA),
// at the handshake and on every request. The file is reloaded when it changes and again when
// the CA is replaced (its signature must verify against the CA in use).
//
// A CRL past its next update is still enforced, not treated as "revoke everything": the gateway
// often keeps working through an uplink outage, when no fresh CRL can be fetched, and refusing
// the whole fleet then would be worse than admitting a device revoked since the last CRL. It stays
// enforced until a newer file replaces it; it is warned about at load, on SIGHUP and once a day
// while it lasts, and its nextUpdate is a metric (lib/observe/certificate-expiry.ts); the
// blocklist covers the gap.

export interface RevocationList {
  /** `issuer`: the client certificate's issuer name, as X509Certificate.issuer prints it. */
  has(serial: string, issuer: string): boolean;
  readonly size: number;
  /** The CA changed: verify the CRL again against it. */
  recheck(): void;
  close(): void;
}

export function watchRevocationList(
  path: string,
  trusted: () => readonly X509Certificate[],
  log: Logger,
  onReload: () => void,
  pollMs?: number,
): RevocationList {
  let byIssuer = new Map<string, Set<string>>();
  let nextUpdate: number | null = null;
  let size = 0;
  // Which watcher's file the CRL date is (a reload starts the next one before closing this one).
  const owner = {};
  const load = (p: string): Loaded<Crl[]> => {
    const read = readFileBytes(p);
    if (!read.ok) return read;
    const parsed = parseCrls(read.value, trusted());
    return parsed.ok ? { ok: true, value: parsed.crls } : parsed;
  };
  const file = watchLoadedFile(
    'Features.mTLS.CRLPath',
    path,
    load,
    {
      onLoad(crls, initial) {
        byIssuer = new Map();
        for (const crl of crls) {
          const set = byIssuer.get(crl.issuer.subject) ?? new Set<string>();
          for (const serial of crl.serials) set.add(serial);
          byIssuer.set(crl.issuer.subject, set);
        }
        size = crls.reduce((n, c) => n + c.serials.size, 0);
        const updates = crls.map((c) => c.nextUpdate?.getTime()).filter((t): t is number => t !== undefined);
        nextUpdate = updates.length > 0 ? Math.min(...updates) : null;
        log.info(initial ? 'mTLS CRL loaded' : 'mTLS CRL reloaded', {
          path,
          crls: crls.length,
          revoked: size,
          next_update: nextUpdate === null ? 'none' : new Date(nextUpdate).toISOString(),
        });
        certificateExpiry.crl(path, nextUpdate, log, owner);
        if (!initial) onReload();
      },
      onBad(reason) {
        log.error('mTLS CRL not reloaded, keeping the last good one', { path, reason, revoked: size });
      },
    },
    pollMs,
  );
  return {
    has: (serial, issuer) => byIssuer.get(issuer)?.has(normaliseSerial(serial) ?? serial) ?? false,
    get size() {
      return size;
    },
    recheck: () => file.reload(),
    close() {
      certificateExpiry.forget('crl', owner);
      file.close();
    },
  };
}
