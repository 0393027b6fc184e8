import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { urlToHttpOptions } from 'node:url';
import type { WantedRange } from '../http/byte-range';
import { GatewayError, upstreamError } from '../http/gateway-error';
import { StaleConnection, isStaleReuse, onceMoreIfStale } from '../http/stale-connection';

// One request to an artifact origin (an S3/R2/Azure presigned URL), sent exactly as the
// server signed it: the path and query are used as given (never re-encoded), Host is the
// URL's host (SigV4 signs `host`), and only unsigned headers are added (Range,
// Accept-Encoding: identity so no proxy or CDN hands us a gzip we would have to undo).
// It resolves on response headers, whatever the status: the caller decides what a 403 or
// 404 means. The body is never buffered.

export interface OriginRequest {
  method?: 'GET' | 'HEAD';
  /** Inclusive byte positions (no end = to the end of the object), or the last `suffix` bytes. */
  range?: WantedRange;
  /** Abort the request (and its body) when the device that wanted it has gone. */
  signal?: AbortSignal;
  /** TLS trust and outbound proxy: upstream.originAgent(url). */
  agent?: http.Agent;
  /** No response headers, or no body bytes, for this long → UPSTREAM_TIMEOUT. */
  timeoutMs?: number;
}

export interface OriginResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: IncomingMessage;
  /** Content-Length when the origin sent a valid one. */
  contentLength: number | null;
  etag: string | null;
  /** Last-Modified as sent (an HTTP-date), or null. */
  lastModified: string | null;
}

const DEFAULT_TIMEOUT_MS = 30_000;

export function fetchOrigin(url: URL, opts: OriginRequest = {}): Promise<OriginResponse> {
  // GET and HEAD are safe to send again after a reset on a reused connection (the agent drops
  // the broken one and gives the second attempt another).
  return onceMoreIfStale((mayRetry) => send(url, opts, mayRetry));
}

function send(url: URL, opts: OriginRequest, mayRetry: boolean): Promise<OriginResponse> {
  const { method = 'GET', range, signal, agent, timeoutMs = DEFAULT_TIMEOUT_MS } = opts;
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return Promise.reject(new GatewayError('ORIGIN_ERROR', `artifact origin scheme ${url.protocol} is not supported`));
  }
  const headers: Record<string, string> = { host: url.host, 'accept-encoding': 'identity' };
  if (range) headers.range = 'suffix' in range ? `bytes=-${range.suffix}` : `bytes=${range.start}-${range.end ?? ''}`;
  // urlToHttpOptions keeps `path` as pathname + search, verbatim, and unbrackets IPv6 hosts.
  const options: http.RequestOptions = { ...urlToHttpOptions(url), method, headers, agent, signal };
  const transport = url.protocol === 'https:' ? https : http;

  return new Promise<OriginResponse>((resolve, reject) => {
    let responded = false;
    const req = transport.request(options, (res) => {
      responded = true;
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        body: res,
        contentLength: parseLength(res.headers['content-length']),
        etag: typeof res.headers.etag === 'string' ? res.headers.etag : null,
        lastModified: typeof res.headers['last-modified'] === 'string' ? res.headers['last-modified'] : null,
      });
    });
    // Idle timeout: covers connect, waiting for headers and a body that stalls mid-way.
    req.setTimeout(timeoutMs, () => {
      req.destroy(new GatewayError('UPSTREAM_TIMEOUT', `artifact origin sent nothing for ${timeoutMs} ms`));
    });
    req.on('error', (err) => {
      if (responded) return; // the body stream carries it from here
      const stale = mayRetry && !signal?.aborted && isStaleReuse(req, err);
      reject(stale ? new StaleConnection('stale keep-alive connection', { cause: err }) : classify(err, signal));
    });
    req.end();
  });
}

function classify(err: unknown, signal: AbortSignal | undefined): GatewayError {
  if (err instanceof GatewayError) return err;
  if (signal?.aborted || (err as Error).name === 'AbortError') {
    return new GatewayError('ORIGIN_ERROR', 'artifact origin request aborted', { cause: err });
  }
  const code = (err as NodeJS.ErrnoException).code ?? '';
  // A reply that is not HTTP at all (HPE_* parser errors) is the origin's fault, not the network's.
  if (code.startsWith('HPE_')) return new GatewayError('ORIGIN_ERROR', `artifact origin sent an invalid response: ${code}`, { cause: err });
  return upstreamError(err, 'artifact origin');
}

function parseLength(value: string | undefined): number | null {
  if (value === undefined || !/^[0-9]{1,16}$/.test(value)) return null;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : null;
}
