import type http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { fetchOrigin, type OriginResponse } from '../../artifacts/origin-fetch';
import { parseContentRange } from '../../http/byte-range';
import { GatewayError } from '../../http/gateway-error';
import { cacheMetrics } from '../../observe/metrics';

// Download one object from the origin into a sink, resuming a cut download with a Range
// request from where it stopped (bounded retries, exponential backoff), as apt-cacher-ng
// and the Mender client's own http_resumer do. An origin that contradicts itself (another
// length or ETag on resume, 416 inside the object) is not retried: nothing it sends can be
// trusted to complete the file.

export interface RetryPolicy {
  /** Consecutive attempts that bring no new byte before giving up. */
  retries: number;
  backoffMs: number;
  maxBackoffMs: number;
  /** Origin idle timeout (no headers or no body bytes for this long). */
  timeoutMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { retries: 5, backoffMs: 250, maxBackoffMs: 5_000, timeoutMs: 30_000 };
const MAX_ATTEMPTS = 100;

export interface DownloadSink {
  /** The first response's length, ETag and Last-Modified; throwing stops the download (e.g. no room on disk). */
  start(size: number, etag: string | null, lastModified: string | null): Promise<void>;
  write(chunk: Buffer): Promise<void>;
}

/** The origin answered something no retry can fix. */
export class OriginRefused extends GatewayError {}

/** The origin sent no Content-Length: the entry cannot be verified, so it is served uncached. */
export class NoContentLength extends Error {}

/** The sink refused the download (no room on disk): retrying the origin cannot help. */
export class SinkRefused extends Error {}

/** Check a response against what we asked; returns the body to read or throws. */
export function checkResponse(
  r: Pick<OriginResponse, 'status' | 'headers' | 'contentLength' | 'etag'>,
  offset: number,
  expected: { size: number; etag: string | null } | null,
): void {
  if (r.status >= 500) throw new GatewayError('ORIGIN_ERROR', `artifact origin answered ${r.status}`);
  if (expected === null) {
    if (r.status === 404) throw new OriginRefused('NOT_FOUND', 'artifact not found at its origin');
    if (r.status !== 200) throw new OriginRefused('ORIGIN_ERROR', `artifact origin answered ${r.status}`);
    if (r.contentLength === null) throw new NoContentLength('artifact origin sent no Content-Length');
    return;
  }
  if (r.status !== 206) throw new OriginRefused('ORIGIN_ERROR', `artifact origin answered ${r.status} to a resume at ${offset}`);
  const cr = parseContentRange(r.headers['content-range'] as string | undefined);
  if (!cr || cr.start !== offset || cr.end !== expected.size - 1 || cr.size !== expected.size) {
    throw new OriginRefused(
      'ORIGIN_ERROR',
      `artifact origin resumed with Content-Range ${String(r.headers['content-range'])}, expected bytes ${offset}-${expected.size - 1}/${expected.size}`,
    );
  }
  if (expected.etag !== null && r.etag !== null && r.etag !== expected.etag) {
    throw new OriginRefused('ORIGIN_ERROR', 'artifact changed at its origin during the download (ETag differs)');
  }
}

export interface DownloadOptions {
  signal: AbortSignal;
  agent?: http.Agent;
  retry?: RetryPolicy;
  onRetry?: (offset: number, err: Error) => void;
  /** Bytes already on disk from an earlier fill (partial-fill.ts): the first request resumes after them. */
  from?: { offset: number; size: number; etag: string };
}

export async function resumableDownload(
  url: URL,
  sink: DownloadSink,
  opts: DownloadOptions,
): Promise<{ size: number; etag: string | null; lastModified: string | null }> {
  const retry = opts.retry ?? DEFAULT_RETRY;
  let expected: { size: number; etag: string | null } | null = opts.from ? { size: opts.from.size, etag: opts.from.etag } : null;
  let offset = opts.from?.offset ?? 0;
  let started = false;
  let lastModified: string | null = null;
  let barren = 0;
  for (let attempt = 1; ; attempt++) {
    const before = offset;
    try {
      const r = await fetchOrigin(url, {
        range: expected ? { start: offset } : undefined,
        signal: opts.signal,
        agent: opts.agent,
        timeoutMs: retry.timeoutMs,
      });
      try {
        checkResponse(r, offset, expected);
        expected ??= { size: r.contentLength as number, etag: r.etag };
        if (!started) {
          started = true;
          lastModified = r.lastModified;
          await sink.start(expected.size, expected.etag, lastModified);
        }
        for await (const chunk of r.body as AsyncIterable<Buffer>) {
          if (offset + chunk.length > expected.size)
            throw new OriginRefused('ORIGIN_ERROR', 'artifact origin sent more bytes than its Content-Length');
          await sink.write(chunk);
          offset += chunk.length;
          cacheMetrics.fetched(chunk.length);
        }
      } finally {
        r.body.destroy();
      }
      if (offset === expected.size) return { ...expected, lastModified };
      throw new GatewayError('ORIGIN_ERROR', `artifact origin ended the body at ${offset} of ${expected.size} bytes`);
    } catch (err) {
      if (opts.signal.aborted)
        throw opts.signal.reason instanceof Error ? opts.signal.reason : new GatewayError('SERVICE_UNAVAILABLE', 'artifact fill aborted');
      if (
        err instanceof OriginRefused ||
        err instanceof NoContentLength ||
        err instanceof SinkRefused ||
        !(err instanceof Error) ||
        isLocal(err)
      )
        throw err;
      barren = offset > before ? 0 : barren + 1;
      if (barren > retry.retries || attempt >= MAX_ATTEMPTS) throw err;
      opts.onRetry?.(offset, err);
      const delay = Math.min(retry.maxBackoffMs, retry.backoffMs * 2 ** Math.max(0, barren - 1));
      await sleep(delay, undefined, { signal: opts.signal }).catch(() => undefined);
    }
  }
}

/** Failures of our own disk: retrying the origin cannot help. */
function isLocal(err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'EIO' || code === 'EROFS';
}
