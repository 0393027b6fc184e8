import { X509Certificate } from 'node:crypto';
import type { Logger } from './log';
import { expiryMetrics, type CertificateName } from './metrics';

// A gateway left alone for months meets the day its certificates end and its CRL goes stale.
// The dates in use (the server certificate, the mTLS client CA, the upstream CA, the CRL's
// nextUpdate) are metrics, and what is wrong with them is said in the log: when a file is
// loaded (start, SIGHUP, a CRL file changed), and again once a day while it holds. check-config
// prints the same lines (lib/commands/config-checks/expiry-warnings.ts).

export type { CertificateName };

/** A certificate is warned about this many days before its notAfter. */
export const EXPIRY_WARNING_DAYS = 30;
const DAY_MS = 86_400_000;
const REMIND_EVERY_MS = DAY_MS;

/** Whole days from `now` to `at`, rounded down: 9 for 9.9 days left, -1 just after `at`. */
export function daysLeft(at: number, now: number): number {
  return Math.floor((at - now) / DAY_MS);
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** Every certificate's notAfter (Unix ms) in a PEM file, in file order; a block that does not parse is skipped. */
export function notAftersOf(pem: string | Buffer): number[] {
  const out: number[] = [];
  for (const block of String(pem).match(CERT_BLOCK) ?? []) {
    try {
      out.push(new X509Certificate(block).validToDate.getTime());
    } catch {
      // The file's own loader reports a broken block; its date is not ours to guess.
    }
  }
  return out;
}

/** The first to end among a bundle's certificates (a CA file): the day the bundle stops being whole. */
export function earliestNotAfter(pem: string | Buffer): number | undefined {
  const all = notAftersOf(pem);
  return all.length > 0 ? Math.min(...all) : undefined;
}

/** The date a file ends: its first certificate's (a server certificate, the leaf) or its earliest (a CA bundle). */
export function notAfterOf(pem: string | Buffer, which: 'leaf' | 'earliest'): number | undefined {
  return which === 'leaf' ? notAftersOf(pem)[0] : earliestNotAfter(pem);
}

/** One warning, as the log writes it and as check-config prints it. */
export interface TimeWarning {
  level: 'warn' | 'error';
  message: string;
  fields: Record<string, string | number>;
  /** The same, in one readable line: "<message>: <path> notAfter <date> (<n> days left)". */
  line: string;
}

/** A certificate within EXPIRY_WARNING_DAYS of its notAfter (warn), or past it (error); undefined when neither. */
export function certificateWarning(certificate: CertificateName, path: string, notAfter: number, now: number): TimeWarning | undefined {
  const date = new Date(notAfter).toISOString();
  if (notAfter <= now) {
    const ago = -daysLeft(notAfter, now) - 1;
    return {
      level: 'error',
      message: 'certificate expired',
      fields: { certificate, path, not_after: date, days_ago: ago },
      line: `certificate expired: ${path} notAfter ${date} (${ago} days ago)`,
    };
  }
  const left = daysLeft(notAfter, now);
  if (left >= EXPIRY_WARNING_DAYS) return undefined;
  return {
    level: 'warn',
    message: 'certificate expires soon',
    fields: { certificate, path, not_after: date, days_left: left },
    line: `certificate expires soon: ${path} notAfter ${date} (${left} days left)`,
  };
}

/** A CRL past its nextUpdate: still enforced (docs/mtls.md); undefined while it is current or has none. */
export function crlWarning(path: string, nextUpdate: number | null, now: number): TimeWarning | undefined {
  if (nextUpdate === null || nextUpdate > now) return undefined;
  const date = new Date(nextUpdate).toISOString();
  return {
    level: 'warn',
    message: 'CRL is past its nextUpdate: still enforced',
    fields: { path, next_update: date, advice: 'install a fresh CRL, or blocklist serials meanwhile' },
    line: `CRL is past its nextUpdate: still enforced: ${path} nextUpdate ${date}; install a fresh CRL (or blocklist serials meanwhile)`,
  };
}

type Watched = { path: string; log: Logger; said: number; owner?: object } & (
  | { kind: 'certificate'; name: CertificateName; notAfter: number }
  | { kind: 'crl'; nextUpdate: number | null }
);

// One per process, like the metrics they feed: keyed by the certificate's name, or 'crl'.
const watched = new Map<CertificateName | 'crl', Watched>();
let said = 0;
let reminder: NodeJS.Timeout | undefined;

function warningOf(w: Watched, now: number): TimeWarning | undefined {
  return w.kind === 'crl' ? crlWarning(w.path, w.nextUpdate, now) : certificateWarning(w.name, w.path, w.notAfter, now);
}

function say(w: Watched, now = Date.now()): void {
  w.said = ++said;
  const warning = warningOf(w, now);
  if (warning) w.log[warning.level](warning.message, warning.fields);
}

function keep(key: CertificateName | 'crl', w: Watched): void {
  watched.set(key, w);
  say(w);
  if (reminder === undefined) {
    // Once a day while it holds; the timer never keeps the process alive.
    reminder = setInterval(() => {
      for (const each of watched.values()) say(each);
    }, REMIND_EVERY_MS);
    reminder.unref();
  }
}

/** The dates in use, as the modules that load the files report them. */
export const certificateExpiry = {
  /**
   * A certificate file now in use: `leaf` (the server certificate, first in its file) or the
   * earliest of a bundle (a CA file). Sets the gauge and says a warning when one holds.
   */
  certificate(name: CertificateName, path: string, pem: string | Buffer, log: Logger, which: 'leaf' | 'earliest', owner?: object): void {
    const notAfter = notAfterOf(pem, which);
    if (notAfter === undefined) return;
    expiryMetrics.certificate(name, notAfter);
    keep(name, { kind: 'certificate', name, path, notAfter, log, said: 0, owner });
  },
  /** The CRL file now enforced: its earliest nextUpdate (null when none has one). */
  crl(path: string, nextUpdate: number | null, log: Logger, owner?: object): void {
    expiryMetrics.crlNextUpdate(nextUpdate ?? undefined);
    keep('crl', { kind: 'crl', path, nextUpdate, log, said: 0, owner });
  },
  /**
   * A file no longer in use (its feature closed, its key emptied). With `owner`, only when that
   * owner's file is the one in use: a watcher replaced on a reload closes after its successor loaded.
   */
  forget(key: CertificateName | 'crl', owner?: object): void {
    const current = watched.get(key);
    if (current === undefined || (owner !== undefined && current.owner !== owner)) return;
    watched.delete(key);
    if (key === 'crl') expiryMetrics.crlNextUpdate(undefined);
    else expiryMetrics.certificate(key, undefined);
    if (watched.size === 0) {
      clearInterval(reminder);
      reminder = undefined;
    }
  },
  /** A mark before a reload; `remind(mark)` after it says what still holds and the reload did not say already. */
  mark(): number {
    return said;
  },
  remind(since = Number.POSITIVE_INFINITY): void {
    for (const w of watched.values()) if (w.said <= since) say(w);
  },
};
