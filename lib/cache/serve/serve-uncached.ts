import type http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { fetchOrigin } from '../../artifacts/origin-fetch';
import { GatewayError } from '../../http/gateway-error';
import { cacheMetrics } from '../../observe/metrics';

// When the cache cannot hold an artifact (no room even after eviction, or an origin that
// sends no length) each device is streamed straight from the origin, its Range passed on.
// The device sees the same statuses and headers as from the cache.

export function originRange(header: string | undefined): { start: number; end?: number } | undefined {
  const m = /^bytes=(\d{1,16})-(\d{0,16})$/.exec((header ?? '').trim());
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = m[2] === '' ? undefined : Number(m[2]);
  return end !== undefined && end < start ? undefined : { start, end };
}

const COPIED = ['content-length', 'content-range', 'etag', 'last-modified'];

export async function serveUncached(req: IncomingMessage, res: ServerResponse, origin: URL, agent: http.Agent | undefined): Promise<void> {
  const abort = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) abort.abort();
  };
  res.once('close', onClose);
  const r = await fetchOrigin(origin, { range: originRange(req.headers.range), agent, signal: abort.signal });
  if (r.status !== 200 && r.status !== 206) {
    r.body.destroy();
    res.off('close', onClose);
    if (r.status === 416)
      throw new GatewayError('RANGE_NOT_SATISFIABLE', 'requested range not satisfiable', { headers: pick(r.headers, ['content-range']) });
    if (r.status === 404) throw new GatewayError('NOT_FOUND', 'artifact not found at its origin');
    throw new GatewayError('ORIGIN_ERROR', `artifact origin answered ${r.status}`);
  }
  res.writeHead(r.status, { 'Content-Type': 'application/octet-stream', 'Accept-Ranges': 'bytes', ...pick(r.headers, COPIED) });
  if (req.method === 'HEAD') {
    r.body.destroy();
    res.end();
    return;
  }
  r.body.on('data', (chunk: Buffer) => cacheMetrics.fetched(chunk.length));
  // pipeline destroys the response if the origin breaks off: the device sees a broken download.
  await pipeline(r.body, res).catch(() => undefined);
}

function pick(headers: http.IncomingHttpHeaders, names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) {
    const v = headers[n];
    if (typeof v === 'string') out[n] = v;
  }
  return out;
}
