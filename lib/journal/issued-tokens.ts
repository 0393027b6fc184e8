import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';

// The last device token upstream issued for each (identity, auth key), kept in memory so an auth
// request made while upstream is unreachable can get that same token back (client 5.1
// asks mender-auth for a fresh token before ArtifactCommit and cannot report without one).
// Nothing is forged or extended: an entry is only served until the token's own `exp`, minus a
// margin, and only to a request signed by the same key (checked by the caller, kept-tokens.ts,
// the journal's wrapper of the one auth route, with mTLS or without).

export interface IssuedToken {
  body: Buffer;
  contentType: string | undefined;
  /** ms since the epoch; from the token's `exp` claim */
  expiresAt: number;
}

/** A token is not served in its last minute: the device would use it past its expiry. */
const EXPIRY_MARGIN_MS = 60_000;
/** Bounds memory: about 1 KB per device; the oldest entry goes first. */
const MAX_ENTRIES = 200_000;

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

export class IssuedTokens {
  private readonly entries = new Map<string, IssuedToken>();
  /** Told of every token upstream issued (the report journal trusts exactly these and the ones upstream accepted). */
  onIssued: ((token: string) => void) | undefined;

  /** Remember an upstream 200; a body that is not a JWT with exp is not kept. */
  remember(key: string, body: Buffer, contentType: string | undefined): void {
    const text = body.toString('utf8');
    this.onIssued?.(text);
    const expiresAt = jwtExpiry(text);
    if (expiresAt === undefined) return;
    this.entries.delete(key);
    this.entries.set(key, { body, contentType, expiresAt });
    if (this.entries.size > MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
  }

  /** The token to serve for key at `now`, or undefined (none, or too close to its expiry). */
  lookup(key: string, now = Date.now()): IssuedToken | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt - EXPIRY_MARGIN_MS <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
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
