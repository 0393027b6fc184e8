import { createHmac, timingSafeEqual } from 'node:crypto';
import { GatewayError } from '../http/gateway-error';

// The gateway's download links, in the dialect of Mender's own signed links
// (deployments model/signature.go): `x-men-expire` (RFC 3339 UTC) and `x-men-signature`
// (base64url, no padding, HMAC-SHA256 under SignatureSecret). The link carries the origin
// URL itself (base64url in the path), so any replica sharing the secret can serve it, after
// any restart, with no table. The method is not signed: GET and HEAD share a link.
//
//   <GatewayURL>/api/internal/v1/gateway/artifacts/<base64url(origin)>?x-men-expire=…&x-men-signature=…
//
// The expiry is absolute wall-clock time, like Mender's. A clock stepped forward may expire a
// link early (the device's next poll gets a fresh one); a clock stepped back must not make one
// live longer than a fresh link would: a link whose expiry lies further ahead than
// LinkExpireDuration (and a minute for the clocks of replicas) is refused as not yet valid.
//
// The prefix is the gateway's own (next to /api/internal/v1/gateway/alive), outside
// /api/devices/, so it never shadows a Mender server route.

import { ARTIFACT_LINK_PREFIX } from '../device-api';

// Presigned S3 URLs are 1-2 KB; Node refuses request heads over 16 KB anyway.
const MAX_TOKEN_LENGTH = 8192;
const SIGNATURE_LENGTH = 43; // 32 bytes in base64url without padding
const TOKEN = /^[A-Za-z0-9_-]+$/;
const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

export type LinkCheck =
  | { ok: true; origin: URL; expiresAt: Date }
  | { ok: false; reason: 'malformed' | 'incomplete' | 'forged' | 'expired' | 'not-yet-valid'; detail: string };

export interface LinkSigner {
  /** A link for `origin` (the uri exactly as the server sent it), valid until `expiresAt`. */
  mint(origin: string, expiresAt: Date): string;
  /** Check a request target (path and query, as received). */
  verify(target: string, now?: Date): LinkCheck;
}

export interface LinkSignerOptions {
  /** Decoded SignatureSecret. */
  secret: Buffer;
  /** Features.ArtifactsProxy.GatewayURL. */
  gatewayUrl: string;
  /** LinkExpireDuration (ms): no link is honoured for longer than this from now. */
  lifetimeMs?: number;
}

/** How far the clocks of replicas sharing the secret may disagree. */
export const CLOCK_SKEW_MS = 60_000;

export function createLinkSigner({ secret, gatewayUrl, lifetimeMs }: LinkSignerOptions): LinkSigner {
  if (secret.length < 16) throw new Error('SignatureSecret: must decode to at least 16 bytes');
  const base = gatewayUrl.replace(/\/+$/, '');
  const sign = (token: string, expire: string) =>
    createHmac('sha256', secret).update(`GATEWAY-ARTIFACT\n${token}\nx-men-expire=${expire}\n`).digest('base64url');

  return {
    mint(origin, expiresAt) {
      const token = Buffer.from(origin, 'utf8').toString('base64url');
      const expire = formatExpire(expiresAt);
      return `${base}${ARTIFACT_LINK_PREFIX}${token}?x-men-expire=${encodeURIComponent(expire)}&x-men-signature=${sign(token, expire)}`;
    },

    verify(target, now = new Date()) {
      const q = target.indexOf('?');
      const path = q < 0 ? target : target.slice(0, q);
      if (!path.startsWith(ARTIFACT_LINK_PREFIX)) return fail('malformed', 'not an artifact link');
      const token = path.slice(ARTIFACT_LINK_PREFIX.length);
      // Only the base64url alphabet: `..`, `/`, `%2F`, `%00` and friends cannot appear.
      if (token.length === 0 || token.length > MAX_TOKEN_LENGTH || !TOKEN.test(token))
        return fail('malformed', 'link path is not a link token');
      if (q < 0) return fail('incomplete', 'link has no signature');
      const query = parseQuery(target.slice(q + 1));
      if (query === null) return fail('malformed', 'link query is malformed');
      const expire = query.get('x-men-expire');
      const signature = query.get('x-men-signature');
      if (expire === undefined || signature === undefined) return fail('incomplete', 'link lacks x-men-expire or x-men-signature');
      if (signature.length < SIGNATURE_LENGTH && /^[A-Za-z0-9_-]*$/.test(signature))
        return fail('incomplete', 'link signature is truncated');
      const expected = Buffer.from(sign(token, expire));
      const given = Buffer.from(signature);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return fail('forged', 'link signature does not match');
      // Signed, so these were minted by us; still checked rather than trusted blindly.
      const expiresAt = parseExpire(expire);
      if (expiresAt === null) return fail('malformed', 'x-men-expire is not an RFC 3339 UTC time');
      if (now.getTime() >= expiresAt.getTime()) return fail('expired', `link expired at ${expire}`);
      // Minted in our future: the clock stepped back since (or a replica's runs ahead).
      if (lifetimeMs !== undefined && expiresAt.getTime() - now.getTime() > lifetimeMs + CLOCK_SKEW_MS)
        return fail(
          'not-yet-valid',
          `link expires at ${expire}, further ahead than a link lives: the clock stepped back since it was made`,
        );
      let origin: URL;
      try {
        origin = new URL(Buffer.from(token, 'base64url').toString('utf8'));
      } catch {
        return fail('malformed', 'link does not name a URL');
      }
      return { ok: true, origin, expiresAt };
    },
  };
}

/** The 403 a device gets for a link that does not verify. */
export function linkError(check: Extract<LinkCheck, { ok: false }>): GatewayError {
  return new GatewayError(check.reason === 'expired' || check.reason === 'not-yet-valid' ? 'LINK_EXPIRED' : 'LINK_INVALID', check.detail);
}

export function formatExpire(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function parseExpire(text: string): Date | null {
  if (!RFC3339_UTC.test(text)) return null;
  const date = new Date(text);
  return Number.isNaN(date.getTime()) || formatExpire(date) !== text ? null : date;
}

// Exactly the two parameters, once each; anything else is not a link we minted.
function parseQuery(query: string): Map<string, string> | null {
  const out = new Map<string, string>();
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=');
    if (eq < 0) return null;
    const key = pair.slice(0, eq);
    if ((key !== 'x-men-expire' && key !== 'x-men-signature') || out.has(key)) return null;
    let value: string;
    try {
      value = decodeURIComponent(pair.slice(eq + 1));
    } catch {
      return null;
    }
    out.set(key, value);
  }
  return out;
}

function fail(reason: Extract<LinkCheck, { ok: false }>['reason'], detail: string): LinkCheck {
  return { ok: false, reason, detail };
}
