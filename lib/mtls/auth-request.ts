import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';

// The device's POST …/authentication/auth_requests, as deviceauth reads it
// (device-protocol.md §3.1): a JSON body {id_data: "<JSON object as a string>", pubkey:
// "<PEM PUBLIC KEY>", tenant_token}, signed over its exact bytes in X-MEN-Signature.
// Pure: parsing and checking only; the bytes themselves are forwarded untouched.

/** Cap on an auth request's body, and on the token answered to it. */
export const MAX_AUTH_BODY_BYTES = 64 * 1024;

export interface AuthRequest {
  /** id_data parsed: what preauthorization takes as identity_data. */
  identity: Record<string, unknown>;
  /** The auth key. */
  key: KeyObject;
  /** pubkey as the device sent it (preauthorize gets the same text). */
  pubkeyPem: string;
}

export type Parsed = { ok: true; request: AuthRequest } | { ok: false; error: string };

export function parseAuthRequest(raw: Buffer): Parsed {
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch {
    return { ok: false, error: 'auth request: body is not JSON' };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    return { ok: false, error: 'auth request: body must be a JSON object' };
  const lookalike = Object.keys(body).find((k) => FIELDS.has(folded(k)) && !FIELDS.has(k));
  if (lookalike !== undefined) {
    const field = folded(lookalike);
    return {
      ok: false,
      error: `auth request: key ${JSON.stringify(lookalike)} differs from ${field} only in case: the Mender server would read it as ${field}`,
    };
  }
  const { id_data: idData, pubkey } = body as { id_data?: unknown; pubkey?: unknown };
  if (typeof idData !== 'string' || idData === '') return { ok: false, error: 'auth request: id_data: cannot be blank' };
  if (typeof pubkey !== 'string' || pubkey === '') return { ok: false, error: 'auth request: pubkey: cannot be blank' };
  let identity: unknown;
  try {
    identity = JSON.parse(idData);
  } catch {
    return { ok: false, error: 'auth request: id_data: must be a JSON object' };
  }
  if (typeof identity !== 'object' || identity === null || Array.isArray(identity) || Object.keys(identity).length === 0) {
    return { ok: false, error: 'auth request: id_data: must be a non-empty JSON object' };
  }
  if (!/-----BEGIN PUBLIC KEY-----/.test(pubkey)) return { ok: false, error: 'auth request: pubkey: must be a PEM PUBLIC KEY' };
  let key: KeyObject;
  try {
    key = createPublicKey(pubkey);
  } catch {
    return { ok: false, error: 'auth request: pubkey: cannot decode public key' };
  }
  if (!SIGNING_KEY_TYPES.has(key.asymmetricKeyType ?? '')) {
    return { ok: false, error: `auth request: pubkey: unsupported key type ${key.asymmetricKeyType}` };
  }
  return { ok: true, request: { identity: identity as Record<string, unknown>, key, pubkeyPem: pubkey } };
}

const SIGNING_KEY_TYPES = new Set(['rsa', 'ec', 'ed25519']);

// deviceauth decodes the body with Go's encoding/json, which also matches a key that differs
// from a field's name only in case (Unicode folding: "ID_DATA", "pub\u212Aey" with the Kelvin
// sign): the last such key wins there, while JSON.parse here keeps "id_data". Such a key would
// have the gateway judge one identity and the server admit another, so it is refused. A
// duplicated exact key is no such gap: JSON.parse and Go both keep its last value.
const FIELDS = new Set(['id_data', 'pubkey', 'tenant_token']);

/** Close to Go's case folding for these names: "ſ" (U+017F) → "s", "K" (U+212A) → "k"; a stricter match is harmless. */
function folded(key: string): string {
  return key.toUpperCase().toLowerCase();
}

/** X-MEN-Signature over the raw body: RSA PKCS#1 v1.5 / ECDSA (DER) on SHA-256, Ed25519 pure. */
export function verifyAuthSignature(raw: Buffer, key: KeyObject, signature: string | undefined): boolean {
  if (!signature || !/^[A-Za-z0-9+/]+={0,2}$/.test(signature.trim())) return false;
  try {
    const sig = Buffer.from(signature.trim(), 'base64');
    return verify(key.asymmetricKeyType === 'ed25519' ? null : 'sha256', raw, key, sig);
  } catch {
    return false;
  }
}

/** The same key, whatever its PEM whitespace (ambassador 1.1.0 compared keys this way). */
export function sameKey(a: KeyObject, b: KeyObject): boolean {
  return spkiOf(a).equals(spkiOf(b));
}

function spkiOf(key: KeyObject): Buffer {
  return key.export({ type: 'spki', format: 'der' });
}

/**
 * What deviceauth matches a preauthorized auth set on: sorted identity and the key. Used as
 * the preauthorization cache key.
 */
export function preauthorizationKey(request: AuthRequest): string {
  return createHash('sha256').update(canonicalIdentity(request.identity)).update('\0').update(spkiOf(request.key)).digest('hex');
}

/** An identity as deviceauth matches it: its attributes in sorted order, as JSON. */
export function canonicalIdentity(identity: Record<string, unknown>): string {
  return JSON.stringify(
    Object.fromEntries(
      Object.keys(identity)
        .sort()
        .map((k) => [k, identity[k]]),
    ),
  );
}
