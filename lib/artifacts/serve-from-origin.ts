import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GatewayError } from '../http/gateway-error';
import { contentRange, parseByteRange, unsatisfiedRange } from '../http/byte-range';
import type { RequestContext } from '../http/route';
import { redactUrl } from '../observe/log';
import type { Upstream } from '../proxy/upstream';
import type { ArtifactServer } from './artifact-server';
import { fetchOrigin, type OriginRequest, type OriginResponse } from './origin-fetch';
import { cacheMetrics } from '../observe/metrics';

// Cache off: every GET/HEAD of a verified link streams from the origin (the presigned URL).
// The device's Range goes to the origin, and what comes back is checked before a byte is
// sent, because the Mender client demands an exact Content-Length on 200 and an exact
// Content-Range on 206 (device-protocol.md §9.3). An origin that ignores Range (Mender's
// generated configuration artifacts do) is sliced here. HEAD becomes GET bytes=0-0: a
// presigned URL is signed for GET only (SigV4 signs the method).

export interface ServeFromOriginDeps {
  upstream?: Pick<Upstream, 'originAgent' | 'timeoutMs'>;
}

type Wanted = NonNullable<OriginRequest['range']>;

export function createOriginArtifactServer(deps: ServeFromOriginDeps = {}): ArtifactServer {
  return {
    async serve(req, res, origin, ctx) {
      const head = req.method === 'HEAD';
      const controller = new AbortController();
      res.on('close', () => {
        if (!res.writableFinished) controller.abort();
      });
      const up = await fetchOrigin(origin, {
        range: head ? { start: 0, end: 0 } : wantedRange(req.headers.range),
        signal: controller.signal,
        agent: deps.upstream?.originAgent(origin),
        timeoutMs: deps.upstream?.timeoutMs,
      });
      try {
        await reply(req, res, up, head, origin, ctx);
      } finally {
        if (!up.body.complete) up.body.destroy();
      }
    },
  };
}

async function reply(
  req: IncomingMessage,
  res: ServerResponse,
  up: OriginResponse,
  head: boolean,
  origin: URL,
  ctx: RequestContext,
): Promise<void> {
  const held = heldBytes(up, origin, ctx); // which bytes of how large an object the body holds
  if (held.total === null) {
    // S3 answers 416 with an XML body and no Content-Range: the size is then unknown here.
    const headers: Record<string, string> = held.size === null ? {} : { 'Content-Range': unsatisfiedRange(held.size) };
    throw new GatewayError('RANGE_NOT_SATISFIABLE', 'range not satisfiable', { headers });
  }
  const total = held.total;
  const range = parseByteRange(req.headers.range, total);
  if (range.kind === 'unsatisfiable')
    throw new GatewayError('RANGE_NOT_SATISFIABLE', 'range not satisfiable', { headers: { 'Content-Range': unsatisfiedRange(total) } });
  const [start, end] = range.kind === 'single' ? [range.start, range.end] : [0, total - 1];
  const headers: OutgoingHttpHeaders = {
    'content-type': up.headers['content-type'] ?? 'application/octet-stream',
    'content-length': Math.max(0, end - start + 1),
    'accept-ranges': 'bytes',
    // No proxy between us and the device may compress it: the client needs the length.
    'cache-control': 'no-transform',
  };
  for (const name of ['content-disposition', 'last-modified', 'etag'] as const) {
    if (up.headers[name] !== undefined) headers[name] = up.headers[name];
  }
  if (range.kind === 'single') headers['content-range'] = contentRange(start, end, total);
  const status = range.kind === 'single' ? 206 : 200;
  if (head) {
    res.writeHead(status, headers).end();
    return;
  }
  if (start < held.start || end > held.end) {
    throw new GatewayError('ORIGIN_ERROR', 'artifact origin answered a different range than requested');
  }
  res.writeHead(status, headers);
  const skip = start - held.start;
  const length = end - start + 1;
  up.body.on('data', (chunk: Buffer) => cacheMetrics.fetched(chunk.length));
  if (skip === 0 && end === held.end) await pipeline(up.body, res);
  else await pipeline(up.body, new ByteWindow(skip, length), res);
}

interface Held {
  /** Object size; null when the origin said the range is unsatisfiable. */
  total: number | null;
  size: number | null;
  start: number;
  end: number;
}

function heldBytes(up: OriginResponse, origin: URL, ctx: RequestContext): Held {
  const encoding = up.headers['content-encoding'];
  if (encoding && encoding !== 'identity') throw originFailure(`artifact origin sent a ${encoding}-encoded body`, up, origin, ctx);
  if (up.status === 200) {
    if (up.contentLength === null) throw originFailure('artifact origin sent no Content-Length', up, origin, ctx);
    return { total: up.contentLength, size: up.contentLength, start: 0, end: up.contentLength - 1 };
  }
  if (up.status === 206) {
    const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(up.headers['content-range'] ?? ''));
    const [s, e, t] = m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [NaN, NaN, NaN];
    if (!m || e < s || e >= t || (up.contentLength !== null && up.contentLength !== e - s + 1)) {
      throw originFailure('artifact origin sent a 206 without a usable Content-Range', up, origin, ctx);
    }
    return { total: t, size: t, start: s, end: e };
  }
  if (up.status === 416) {
    const m = /^bytes \*\/(\d+)$/.exec(String(up.headers['content-range'] ?? ''));
    return { total: null, size: m ? Number(m[1]) : null, start: 0, end: -1 };
  }
  if (up.status === 403) {
    throw originFailure(
      'artifact origin refused the presigned URL (403): it has most likely expired; the device gets fresh instructions on its next poll',
      up,
      origin,
      ctx,
    );
  }
  if (up.status === 404) throw originFailure('artifact not found at the origin (404)', up, origin, ctx);
  throw originFailure(`artifact origin answered ${up.status}`, up, origin, ctx);
}

function originFailure(why: string, up: OriginResponse, origin: URL, ctx: RequestContext): GatewayError {
  ctx.log.warn(why, { origin: redactUrl(origin.href), origin_status: up.status });
  return new GatewayError('ORIGIN_ERROR', 'artifact origin failed; see the gateway log');
}

/** Passes `length` bytes after skipping `skip`, then ends. */
class ByteWindow extends Transform {
  private ended = false;
  constructor(
    private skip: number,
    private remaining: number,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    // The origin sends on; the device has what it asked for.
    if (this.ended) {
      done();
      return;
    }
    let part = chunk;
    if (this.skip > 0) {
      const cut = Math.min(this.skip, part.length);
      this.skip -= cut;
      part = part.subarray(cut);
    }
    if (this.remaining > 0 && part.length > 0) {
      const take = part.subarray(0, this.remaining);
      this.remaining -= take.length;
      this.push(take);
    }
    if (this.remaining === 0) {
      this.ended = true;
      this.push(null);
    }
    done();
  }
}

/** What to ask the origin for, read from the device's Range syntax (the size is not known yet). */
export function wantedRange(header: string | undefined): Wanted | undefined {
  if (parseByteRange(header, Number.MAX_SAFE_INTEGER).kind !== 'single') return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)-(\d*)\s*$/i.exec(header ?? '');
  if (!m) return undefined;
  if (m[1] === '') return { suffix: Number(m[2]) };
  return m[2] === '' ? { start: Number(m[1]) } : { start: Number(m[1]), end: Number(m[2]) };
}
