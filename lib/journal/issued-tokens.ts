import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { BoundedMap } from '../state/bounded-map';

// The last device token upstream issued for each (identity, auth key), kept in memory so an auth
// request made while upstream is unreachable can get that same token back (client 5.1
// asks mender-auth for a fresh token before ArtifactCommit and cannot report without one).
// Nothing is forged or extended: an entry is only served until the token's own `exp`, minus a
// margin, and only to a request signed by the same key (checked by the caller, kept-tokens.ts,
// the journal's wrapper of the one auth route, with mTLS or without).
// Across a clock step: served only while our wall clock is before its `exp` (less the margin),
// as the server judges it; dropped only when it has lived its whole lifetime (`exp - iat`) by the
// monotonic clock since upstream issued it. A clock stepped forward stops serving a token
// without losing it, so a step back (the first step was wrong) finds it again; a clock stepped
// back never serves a token longer than its lifetime.

export interface IssuedToken {
  body: Buffer;
  contentType: string | undefined;
  /** ms since the epoch; from the token's `exp` claim */
  expiresAt: number;
  /** Monotonic ms: past this it is gone whatever the wall clock says (its lifetime less the margin). */
  dropAt: number;
}

/** A token is not served in its last minute: the device would use it past its expiry. */
const EXPIRY_MARGIN_MS = 60_000;
/**
 * Bounds memory: about 1.3 KB per device (a token and its key), ~6.5 MB at the cap; the least
 * recently issued goes first. One per device, so as many devices as the known-good tokens
 * (known-tokens.ts) hold at three tokens each, and more than the journal's replay keeps tokens of.
 */
export const MAX_ISSUED_TOKENS = 5_000;
/** Tokens past their exp are swept out at most this often (each one is dropped at its lookup anyway). */
const SWEEP_EVERY_MS = 60_000;

/** Key of an auth request: its id_data and pubkey as sent (the same device sends the same text). */
export function authKeyOf(idData: string, pubkey: string): string {
  return createHash('sha256').update(idData).update('\0').update(pubkey).digest('hex');
}

/** `exp` of a JWT (ms), or undefined when the body is not a JWT with a numeric exp. */
export function jwtExpiry(token: string): number | undefined {
  const parts = token.trim().split('.');
  if (parts.length !== 3) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof claims.exp === 'number' && Number.isFinite(claims.exp) ? claims.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** `exp - iat` of a JWT (ms), or undefined. */
export function jwtLifetime(token: string): number | undefined {
  try {
    const claims = JSON.parse(Buffer.from(token.trim().split('.')[1] ?? '', 'base64url').toString('utf8')) as {
      exp?: unknown;
      iat?: unknown;
    };
    return typeof claims.exp === 'number' && typeof claims.iat === 'number' && claims.exp > claims.iat
      ? (claims.exp - claims.iat) * 1000
      : undefined;
  } catch {
    return undefined;
  }
}

export class IssuedTokens {
  /** The age of an entry is its token's own lifetime: gone at its lookup, or at a sweep. */
  private readonly entries: BoundedMap<string, IssuedToken>;
  private sweptAt = Number.NEGATIVE_INFINITY;
  /** Told of every token upstream issued (the report journal trusts exactly these and the ones upstream accepted). */
  onIssued: ((token: string) => void) | undefined;

  /** `clock`: monotonic ms (tests pass their own). */
  constructor(
    maxEntries = MAX_ISSUED_TOKENS,
    private readonly clock: () => number = () => performance.now(),
  ) {
    this.entries = new BoundedMap({ maxEntries });
  }

  /** Remember an upstream 200; a body that is not a JWT with exp is not kept. `now`: wall-clock ms. */
  remember(key: string, body: Buffer, contentType: string | undefined, now = Date.now()): void {
    const text = body.toString('utf8');
    this.onIssued?.(text);
    const expiresAt = jwtExpiry(text);
    if (expiresAt === undefined) return;
    const at = this.clock();
    this.sweep(at);
    // No iat: its lifetime as our wall clock reads it now.
    const lifetime = jwtLifetime(text) ?? expiresAt - now;
    // A copy of its own: a small Buffer is a slice of a shared 8 KiB pool, which it would keep.
    const own = Buffer.allocUnsafeSlow(body.length);
    body.copy(own);
    this.entries.set(key, { body: own, contentType, expiresAt, dropAt: at + lifetime - EXPIRY_MARGIN_MS });
  }

  /** Tokens past their lifetime (by the monotonic clock) out of memory. */
  private sweep(at: number): void {
    if (at - this.sweptAt < SWEEP_EVERY_MS) return;
    this.sweptAt = at;
    for (const [key, entry] of this.entries.entries()) if (entry.dropAt <= at) this.entries.delete(key);
  }

  /**
   * The token to serve for key at `now` (wall-clock ms), or undefined: none, too close to its
   * `exp` by the wall clock (kept: the clock may step back), or past its lifetime (dropped).
   */
  lookup(key: string, now = Date.now()): IssuedToken | undefined {
    const entry = this.entries.peek(key);
    if (!entry) return undefined;
    if (entry.dropAt <= this.clock()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.expiresAt - EXPIRY_MARGIN_MS <= now ? undefined : entry;
  }

  /** Upstream refused this device (401/403...): its old token must not be handed out again. */
  forget(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}

/** Answer an auth request with a kept token, as upstream answered it (status 200, its type). */
export function replyWithIssuedToken(res: ServerResponse, token: IssuedToken, requestId: string): void {
  res.writeHead(200, {
    ...(token.contentType ? { 'Content-Type': token.contentType } : {}),
    'Content-Length': token.body.length,
    'X-MEN-RequestID': requestId,
  });
  res.end(token.body);
}

/** The log line of every token given back, so both auth routes say it alike. */
export const TOKEN_GIVEN_BACK = 'upstream unreachable: device given the token upstream last issued it';
