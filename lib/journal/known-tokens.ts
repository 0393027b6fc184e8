import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { jwtExpiry, jwtLifetime } from './issued-tokens';
import type { Logger } from '../observe/log';
import { BoundedMap } from '../state/bounded-map';
import { isTokenCheckedPath } from '../device-api';
import { deviceIdFromAuthorization } from '../observe/status-page/device-id';

// The device tokens upstream has accepted (an answer 2xx to a live device API request carrying
// it) or issued (a 200 from an auth route). The gateway cannot verify a JWT itself (it does not
// hold the server's key), so a token's `sub` names a device only once upstream accepted that very
// token: only then may the journal keep a report under it, replay it, or let it stand in for an
// older token of the same device. Keyed by the SHA-256 of the exact token; the value is its
// device and `exp`. Bounded per device (a device's least recently used token out first) and in
// all (least recently used out), expired entries dropped, kept across a restart in
// `known-tokens` beside the journal: hashes, device ids and expiries, never a token.
// Across a clock step (as issued-tokens.ts): trusted only while the wall clock is before `exp`,
// dropped when the time it had left when first seen (by the wall clock then, and never more than
// its lifetime `exp - iat`) has passed on the monotonic clock, so a step forward then back finds
// a device's token again, and a step back never keeps one longer than its lifetime. Seeing the
// token again never moves that time later: a wall clock stepped back would extend it by the step.

/** About 120 bytes a line on disk and ~250 in memory: 20,000 is ~2.4 MB and ~5 MB, a few tokens for each of thousands of devices. */
export const MAX_KNOWN_TOKENS = 20_000;
/**
 * A device's tokens kept at once. Upstream issues a new token at every auth request, so without
 * this one device re-authenticating in a loop would push every other device's token out of the
 * set. Three: the token a device uses now, the one before it (reports sent or queued just before
 * a renewal still carry it), and one for an overlap (client 5's mender-auth renews while
 * mender-update still sends with the old token, or two renewals close together).
 */
export const MAX_TOKENS_PER_DEVICE = 3;
export const KNOWN_TOKENS_FILE = 'known-tokens';
/** A token without `exp` (Mender's always have one) is trusted as long as Mender's default lifetime. */
const NO_EXP_LIFETIME_MS = 7 * 24 * 3_600_000;
/** Writes are gathered: the file is rewritten at most this often. */
const SAVE_DELAY_MS = 1_000;
/** Node's header limit is 16 KiB; a Mender token is about 1 KB. */
const MAX_TOKEN_CHARS = 8 * 1024;

export interface KnownToken {
  device: string;
  /** ms since the epoch */
  expiresAt: number;
  /** ms: `exp - iat`, or (no iat) what was left of it when first decoded; bounds its keep on the monotonic clock. */
  lifetime?: number;
}

export type TokenVerdict = ({ t: 'accepted'; hash: string } & KnownToken) | { t: 'refused'; hash: string };

export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** The token of an `Authorization: Bearer <token>` header, or undefined for anything else. */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined || authorization.length > MAX_TOKEN_CHARS) return undefined;
  return /^Bearer +([\x21-\x7e]+) *$/i.exec(authorization)?.[1];
}

/** What upstream's answer to a live device request says of the token it carried, if anything. */
export function verdictOf(authorization: string | undefined, url: string, status: number, now = Date.now()): TokenVerdict | undefined {
  if (!isTokenCheckedPath(url.split('?')[0]!)) return undefined;
  const token = bearerToken(authorization);
  if (token === undefined) return undefined;
  if (status === 401) return { t: 'refused', hash: tokenHash(token) };
  // 2xx only: a redirect may come from a proxy in front that never looked at the token.
  return status >= 200 && status < 300 ? accepted(token, now) : undefined;
}

/** A token upstream issued (the body of a 200 to an auth request). */
export function issuedVerdict(body: string, now = Date.now()): TokenVerdict | undefined {
  const token = body.trim();
  return token.length > MAX_TOKEN_CHARS ? undefined : accepted(token, now);
}

// The claims of tokens seen lately, by hash (null: not a device token). A device polls with the
// same token for hours and every answer upstream gives it comes here: its claims are decoded once
// (base64 and JSON twice, ~8 µs), not on every answer. A memo of a pure function, bounded: the
// tokens in use lately (the least recently used out), each for two hours since its last use,
// longer than a device's default poll interval (30 min); past that, decoding again is cheap.
const CLAIMS_SEEN = 4_096;
const CLAIMS_SEEN_AGE_MS = 2 * 3_600_000;
const claimsSeen = new BoundedMap<string, KnownToken | null>({ maxEntries: CLAIMS_SEEN, maxAgeMs: CLAIMS_SEEN_AGE_MS });

/** Entries of the claims memo (tests, bench/state-sizes.ts). */
export function claimsSeenSize(): number {
  claimsSeen.prune();
  return claimsSeen.size;
}

function accepted(token: string, now: number): TokenVerdict | undefined {
  const hash = tokenHash(token);
  let claims = claimsSeen.get(hash);
  if (claims === undefined) {
    const device = deviceIdFromAuthorization(`Bearer ${token}`);
    const expiresAt = jwtExpiry(token);
    claims =
      device === undefined
        ? null
        : expiresAt === undefined
          ? { device, expiresAt: now + NO_EXP_LIFETIME_MS, lifetime: NO_EXP_LIFETIME_MS }
          : { device, expiresAt, lifetime: jwtLifetime(token) ?? expiresAt - now };
    claimsSeen.set(hash, claims);
  }
  return claims && claims.expiresAt > now ? { t: 'accepted', hash, ...claims } : undefined;
}

/** Expired tokens are swept out at most this often (each one is dropped at its use anyway). */
const SWEEP_EVERY_MS = 60_000;

/** An entry: and when it is gone on the monotonic clock, whatever the wall clock says. */
type Kept = KnownToken & { dropAt: number };

export class KnownTokens {
  /**
   * In order of last use (an accepted verdict or an issue moves a token to the end), at most
   * `max`; the age of an entry is its token's own `exp` (swept at a write, and at its use).
   */
  private readonly entries: BoundedMap<string, Kept>;
  /** Each device's token hashes, in the same order: a device only while it has one, so no more devices than entries. */
  private readonly byDevice = new Map<string, Set<string>>();
  private sweptAt = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  private saving: Promise<void> | undefined;
  private dirty = false;
  private saveFailed = false;

  /**
   * dir undefined: memory only. makeParents false (the default journal directory): dir itself
   * is made when missing, its parent (the cache, or systemd's StateDirectory) never is.
   */
  constructor(
    private readonly dir: string | undefined,
    private readonly log: Logger,
    private readonly makeParents = true,
    max = MAX_KNOWN_TOKENS,
    private readonly maxPerDevice = MAX_TOKENS_PER_DEVICE,
    /** Monotonic ms (tests pass their own). */
    private readonly clock: () => number = () => performance.now(),
  ) {
    this.entries = new BoundedMap({ maxEntries: max }, undefined, (hash, entry) => this.unlist(hash, entry.device));
  }

  /** The set kept in dir (none yet, or unreadable: empty, logged). */
  static async load(dir: string, log: Logger, makeParents: boolean, now = Date.now()): Promise<KnownTokens> {
    const known = new KnownTokens(dir, log, makeParents);
    let text = '';
    try {
      text = await readFile(join(dir, KNOWN_TOKENS_FILE), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        log.warn('report journal: known-good tokens unreadable; starting with none', { err: (err as NodeJS.ErrnoException).code });
    }
    // The file is in order of use, so the same bounds apply as while running.
    for (const line of text.split('\n')) {
      const m = /^([0-9a-f]{64}) ([\x21-\x7e]{1,128}) ([0-9]{1,16})$/.exec(line);
      if (m && Number(m[3]) > now) known.put(m[1]!, { device: m[2]!, expiresAt: Number(m[3]) }, now);
    }
    if (known.entries.size > 0) log.info('report journal: known-good device tokens loaded', { tokens: known.entries.size });
    return known;
  }

  apply(verdict: TokenVerdict, now = Date.now()): void {
    if (verdict.t === 'refused') {
      if (this.drop(verdict.hash)) this.changed();
      return;
    }
    const had = this.entries.peek(verdict.hash);
    this.put(verdict.hash, verdict, now);
    // A mere refresh (same token, same exp) moves it in memory only: saving the order on every
    // poll would rewrite the whole file each second; after a restart it is refreshed at next use.
    if (!had || had.expiresAt !== verdict.expiresAt || had.device !== verdict.device) this.changed();
  }

  /** The device of an Authorization header whose token is known good now; undefined otherwise. */
  deviceOf(authorization: string | undefined, now = Date.now()): string | undefined {
    const token = bearerToken(authorization);
    if (token === undefined) return undefined;
    const hash = tokenHash(token);
    const entry = this.entries.peek(hash);
    if (!entry) return undefined;
    if (entry.dropAt <= this.clock()) {
      this.drop(hash);
      this.changed();
      return undefined;
    }
    // Past its exp by our clock: not trusted now, kept (the clock may step back).
    return entry.expiresAt <= now ? undefined : entry.device;
  }

  /** How many tokens of the device are known good (tests, the status of one device). */
  tokensOf(device: string): number {
    return this.byDevice.get(device)?.size ?? 0;
  }

  /**
   * Insert or refresh (to the newest end), then the device's bound; the global one is the map's
   * (its least recently used out, unlisted from its device). A refresh keeps the earlier dropAt
   * if it is sooner: the time left by the wall clock grows by any step back.
   */
  private put(hash: string, entry: KnownToken, now = Date.now()): void {
    const at = this.clock();
    this.sweep(at);
    const left = Math.min(entry.expiresAt - now, entry.lifetime ?? Number.POSITIVE_INFINITY);
    const dropAt = Math.min(at + left, this.entries.peek(hash)?.dropAt ?? Number.POSITIVE_INFINITY);
    this.drop(hash);
    const mine = this.byDevice.get(entry.device) ?? new Set<string>();
    this.byDevice.set(entry.device, mine);
    mine.add(hash);
    // The device's own least recently used token goes first: its renewals never push out
    // another device's.
    while (mine.size > this.maxPerDevice) this.drop(mine.values().next().value!);
    this.entries.set(hash, { device: entry.device, expiresAt: entry.expiresAt, dropAt });
  }

  private drop(hash: string): boolean {
    const entry = this.entries.peek(hash);
    if (!entry) return false;
    this.entries.delete(hash);
    this.unlist(hash, entry.device);
    return true;
  }

  private unlist(hash: string, device: string): void {
    const mine = this.byDevice.get(device);
    mine?.delete(hash);
    if (mine?.size === 0) this.byDevice.delete(device);
  }

  /** Tokens past the time they had left (monotonic) out of memory (the file leaves them out at every save). */
  private sweep(at: number): void {
    if (at - this.sweptAt < SWEEP_EVERY_MS) return;
    this.sweptAt = at;
    for (const [hash, entry] of this.entries.entries()) if (entry.dropAt <= at) this.drop(hash);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Devices with a known token (tests, bench/state-sizes.ts). */
  get devices(): number {
    return this.byDevice.size;
  }

  /** Write what is pending now (at close). */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.saving;
    if (this.dirty) await this.save();
  }

  private changed(): void {
    this.dirty = true;
    if (this.dir === undefined || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.save();
    }, SAVE_DELAY_MS);
    this.timer.unref();
  }

  /** tmp + fsync + rename: the file is always a whole one, mode 0600 in a 0700 directory. */
  private async save(): Promise<void> {
    if (this.dir === undefined) return;
    if (this.saving) {
      await this.saving;
      return this.dirty ? this.save() : undefined;
    }
    const dir = this.dir;
    this.dirty = false;
    const at = this.clock();
    const lines = [...this.entries.entries()].filter(([, e]) => e.dropAt > at).map(([hash, e]) => `${hash} ${e.device} ${e.expiresAt}\n`);
    this.saving = (async () => {
      const path = join(dir, KNOWN_TOKENS_FILE);
      const tmp = `${path}.tmp`;
      try {
        await mkdir(dir, { recursive: this.makeParents, mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw err;
        });
        const out = await open(tmp, 'w', 0o600);
        try {
          await out.chmod(0o600);
          await out.writeFile(lines.join(''));
          await out.sync();
        } finally {
          await out.close();
        }
        await rename(tmp, path);
        this.saveFailed = false;
      } catch (err) {
        this.dirty = true;
        if (!this.saveFailed)
          this.log.warn('report journal: cannot save the known-good tokens; kept in memory only (a restart forgets them)', {
            dir,
            err: (err as NodeJS.ErrnoException).code ?? (err as Error).message,
          });
        this.saveFailed = true;
      }
    })();
    try {
      await this.saving;
    } finally {
      this.saving = undefined;
    }
  }
}
