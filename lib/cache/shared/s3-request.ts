import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StaleConnection, isStaleReuse, onceMoreIfStale } from '../../http/stale-connection';

// One request to the shared-cache bucket on a presigned URL, with our own timeout (minio's
// requests have none) and a capped body read: the answers we read are lock records,
// sidecars and S3 error documents, never artifacts. A PUT body is a Buffer or a stream with
// its Content-Length, piped without buffering.

export interface BucketAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** At most MAX_TEXT bytes of the body. */
  text: string;
}

export interface BucketRequest {
  method: 'GET' | 'HEAD' | 'PUT' | 'DELETE';
  headers?: Record<string, string | number>;
  body?: Buffer | { stream: Readable; length: number };
  /** No connection, headers or body progress for this long: the bucket is unreachable. */
  timeoutMs: number;
  signal?: AbortSignal;
}

const MAX_TEXT = 64 * 1024;

export class BucketUnreachable extends Error {}

export function bucketRequest(url: string, opts: BucketRequest): Promise<BucketAnswer> {
  // Every bucket request is safe to repeat (a repeated lock PUT finds its own record: see
  // BucketLocks.tryTake), except one whose body was a stream already consumed.
  const replayable = !opts.body || Buffer.isBuffer(opts.body);
  return onceMoreIfStale((first) => attempt(url, opts, first && replayable, first));
}

/** `pooled`: on a kept-alive connection of the global agent; else on a new one of its own. */
async function attempt(url: string, opts: BucketRequest, mayRetry: boolean, pooled: boolean): Promise<BucketAnswer> {
  const target = new URL(url);
  const transport = target.protocol === 'https:' ? https : http;
  const headers: Record<string, string | number> = { ...opts.headers };
  if (Buffer.isBuffer(opts.body)) headers['content-length'] = opts.body.length;
  else if (opts.body) headers['content-length'] = opts.body.length;
  else if (opts.method === 'PUT') headers['content-length'] = 0;
  const req = transport.request(target, { method: opts.method, headers, signal: opts.signal, ...(pooled ? {} : { agent: false }) });
  req.setTimeout(opts.timeoutMs, () => req.destroy(new BucketUnreachable(`bucket did not answer within ${opts.timeoutMs} ms`)));
  let responded = false;
  const answered = new Promise<http.IncomingMessage>((resolve, reject) => {
    req.on('response', (res) => {
      responded = true;
      resolve(res);
    });
    req.on('error', reject);
  });
  // It can fail while the body is still being piped (awaited only after): never unhandled.
  answered.catch(() => undefined);
  try {
    if (Buffer.isBuffer(opts.body)) req.end(opts.body);
    else if (opts.body) await pipeline(opts.body.stream, req);
    else req.end();
    const res = await answered;
    let text = '';
    for await (const chunk of res as AsyncIterable<Buffer>) {
      if (text.length < MAX_TEXT) text += chunk.toString('utf8', 0, Math.min(chunk.length, MAX_TEXT - text.length));
    }
    return { status: res.statusCode ?? 0, headers: res.headers, text };
  } catch (err) {
    req.destroy();
    if (err instanceof BucketUnreachable || opts.signal?.aborted) throw err;
    // Connection refused, reset, DNS: the message names the address, never the signed query.
    const unreachable = new BucketUnreachable(`bucket unreachable: ${(err as Error).message}`, { cause: err });
    if (mayRetry && !responded && isStaleReuse(req, err)) throw new StaleConnection('stale keep-alive connection', { cause: unreachable });
    throw unreachable;
  }
}

/** S3's error code from an XML error document (<Code>NoSuchKey</Code>), or the status. */
export function s3ErrorCode(answer: BucketAnswer): string {
  return /<Code>([^<]{1,64})<\/Code>/.exec(answer.text)?.[1] ?? String(answer.status);
}
