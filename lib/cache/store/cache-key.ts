import { createHash } from 'node:crypto';

// The cache key is the origin's host and path, never its query string: a presigned URL
// gets a fresh signature and expiry every time the server hands it out.

/** `host[:port]/path` of the artifact's origin; scheme, query and fragment are dropped. */
export function cacheKey(origin: URL): string {
  if (origin.protocol !== 'http:' && origin.protocol !== 'https:') {
    throw new TypeError(`expected an http(s) origin URL, got ${origin.protocol}`);
  }
  // URL already lower-cases the host, drops a default port and percent-encodes the path.
  return `${origin.host}${origin.pathname}`;
}

/** File-system-safe, fixed-length name for a key (sha256 hex). */
export function entryId(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** An ETag that is a plain MD5 of the body (S3 single-part upload), as 32 lower-case hex digits. */
export function plainMd5Etag(etag: string | null | undefined): string | null {
  if (!etag) return null;
  const m = /^(?:W\/)?"?([0-9a-fA-F]{32})"?$/.exec(etag.trim());
  if (!m || etag.trim().startsWith('W/')) return null;
  return m[1].toLowerCase();
}
