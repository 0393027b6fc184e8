import type http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GatewayError } from '../http/gateway-error';
import {
  ifRangeHolds,
  parseContentRange,
  parseUnsatisfiedRange,
  unsatisfiedRange,
  wantedRange,
  type WantedRange,
} from '../http/byte-range';
import type { RequestContext } from '../http/route';
import { redactUrl } from '../observe/log';
import type { ArtifactServer } from './artifact-server';
import { fetchOrigin, type OriginResponse } from './origin-fetch';
import { planResponse } from './response-plan';
import { cacheMetrics } from '../observe/metrics';

// Every artifact byte that does not come from the cache: the cache off, or an artifact the
// cache cannot hold (no room even after eviction, an origin that sends no length, a cache
// directory that cannot take a fill). The device's Range goes to the origin, and what comes
// back is checked before a byte is sent, because the Mender client demands an exact
// Content-Length on 200 and an exact Content-Range on 206 (device-protocol.md §9.3). An origin
// that ignores Range (Mender's generated configuration artifacts do) is sliced here. HEAD
// becomes GET bytes=0-0: a presigned URL is signed for GET only (SigV4 signs the method).
// If-Range is decided here against the validators the origin answered with (S3 does not
// evaluate it): on a mismatch the origin is asked again for the whole artifact.
// Errors are thrown, never answered here: the artifact route answers them in one place.

export interface ServeFromOriginDeps {
  /** TLS trust and outbound proxy per origin, and the configured idle timeout (the gateway's Upstream fits). */
  upstream?: { originAgent(url: URL): http.Agent | undefined; timeoutMs?: number };
}

export function createOriginArtifactServer(deps: ServeFromOriginDeps = {}): ArtifactServer {
  return {
    async serve(req, res, origin, ctx) {
      const head = req.method === 'HEAD';
      const controller = new AbortController();
      res.on('close', () => {
        if (!res.writableFinished) controller.abort();
      });
      const ask = (range: WantedRange | undefined) =>
        fetchOrigin(origin, {
          range,
          signal: controller.signal,
          agent: deps.upstream?.originAgent(origin),
          timeoutMs: deps.upstream?.timeoutMs,
        });
      const wanted = head ? { start: 0, end: 0 } : wantedRange(req.headers.range);
      let up = await ask(wanted);
      try {
        if (!head && wanted !== undefined && !ifRangeHolds(req.headers['if-range'], up)) {
          up.body.destroy();
          up = await ask(undefined);
        }
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
  const contentType = up.headers['content-type'];
  const disposition = up.headers['content-disposition'];
  const plan = planResponse(req.headers, {
    size: held.total,
    etag: up.etag,
    lastModified: up.lastModified,
    contentType: typeof contentType === 'string' ? contentType : undefined,
    contentDisposition: typeof disposition === 'string' ? disposition : undefined,
  });
  const { start, end } = plan;
  if (head) {
    res.writeHead(plan.status, plan.headers).end();
    return;
  }
  if (end >= start && (start < held.start || end > held.end)) {
    throw new GatewayError('ORIGIN_ERROR', 'artifact origin answered a different range than requested');
  }
  res.writeHead(plan.status, plan.headers);
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
    const held = parseContentRange(up.headers['content-range']);
    if (!held || (up.contentLength !== null && up.contentLength !== held.end - held.start + 1)) {
      throw originFailure('artifact origin sent a 206 without a usable Content-Range', up, origin, ctx);
    }
    return { total: held.size, ...held };
  }
  if (up.status === 416) {
    return { total: null, size: parseUnsatisfiedRange(up.headers['content-range']), start: 0, end: -1 };
  }
  if (up.status === 403) {
    throw originFailure(
      'artifact origin refused the presigned URL (403): it has most likely expired; the device gets fresh instructions on its next poll',
      up,
      origin,
      ctx,
    );
  }
  // As the cache answers it: the artifact is gone, not the gateway or the origin.
  if (up.status === 404) {
    originFailure('artifact not found at the origin (404)', up, origin, ctx);
    throw new GatewayError('NOT_FOUND', 'artifact not found at its origin');
  }
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
