// The device id shown on the status page: the `sub` claim of the device's JWT. Only the payload
// is decoded (the gateway does not hold the server's key; upstream verifies the token, and the
// board records a device only once upstream answered 2xx on a path where it checks the token).
// The token itself is never kept or logged.

const PRINTABLE_ID = /^[\x21-\x7e]{1,128}$/;

export function deviceIdFromAuthorization(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.[A-Za-z0-9_-]*$/i.exec(header.trim());
  if (!m) return undefined;
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(m[2], 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof payload !== 'object' || payload === null) return undefined;
  const sub = (payload as { sub?: unknown }).sub;
  return typeof sub === 'string' && PRINTABLE_ID.test(sub) ? sub : undefined;
}

/** The `status` of a status report body ({"status": "downloading", "substate": …}). */
export function statusOfReport(body: string): string | undefined {
  try {
    const status = (JSON.parse(body) as { status?: unknown }).status;
    return typeof status === 'string' && /^[a-z-]{1,32}$/.test(status) ? status : undefined;
  } catch {
    return undefined;
  }
}
