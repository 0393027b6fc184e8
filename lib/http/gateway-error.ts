// One error type for everything the gateway answers with an error status. The code is
// stable (tests and logs match on it); the status is what the device gets.

export type GatewayErrorCode =
  | 'BAD_REQUEST'
  | 'PAYLOAD_TOO_LARGE'
  | 'FORBIDDEN'
  /** Upstream (the management API) refused this device's identity or key: a 403 upstream vouched for. */
  | 'DEVICE_REFUSED'
  | 'NOT_FOUND'
  | 'LINK_INVALID'
  | 'LINK_EXPIRED'
  | 'RANGE_NOT_SATISFIABLE'
  | 'UPSTREAM_UNREACHABLE'
  | 'UPSTREAM_TIMEOUT'
  | 'UPSTREAM_BAD_RESPONSE'
  | 'ORIGIN_ERROR'
  | 'SERVICE_UNAVAILABLE'
  | 'INTERNAL';

const STATUS: Record<GatewayErrorCode, number> = {
  BAD_REQUEST: 400,
  PAYLOAD_TOO_LARGE: 413,
  FORBIDDEN: 403,
  DEVICE_REFUSED: 403,
  NOT_FOUND: 404,
  LINK_INVALID: 403,
  LINK_EXPIRED: 403,
  RANGE_NOT_SATISFIABLE: 416,
  UPSTREAM_UNREACHABLE: 502,
  UPSTREAM_TIMEOUT: 504,
  UPSTREAM_BAD_RESPONSE: 502,
  ORIGIN_ERROR: 502,
  SERVICE_UNAVAILABLE: 503,
  INTERNAL: 500,
};

export class GatewayError extends Error {
  readonly code: GatewayErrorCode;
  readonly status: number;
  /** Extra response headers (e.g. Content-Range on a 416). */
  readonly headers: Record<string, string>;

  constructor(code: GatewayErrorCode, message: string, options: { cause?: unknown; headers?: Record<string, string> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.status = STATUS[code];
    this.headers = options.headers ?? {};
  }
}

const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT']);

/** Classify a failure talking to upstream (Mender server or artifact origin). */
export function upstreamError(err: unknown, what = 'upstream server'): GatewayError {
  if (err instanceof GatewayError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? '';
  const message = err instanceof Error ? err.message : String(err);
  // Our own descriptors ran out, not upstream: the device may retry soon.
  if (code === 'EMFILE' || code === 'ENFILE')
    return new GatewayError('SERVICE_UNAVAILABLE', `gateway out of file descriptors (${code}): retry later`, { cause: err });
  if (TIMEOUT_CODES.has(code)) return new GatewayError('UPSTREAM_TIMEOUT', `${what} timed out`, { cause: err });
  return new GatewayError('UPSTREAM_UNREACHABLE', `${what} unreachable: ${code || message}`, { cause: err });
}
