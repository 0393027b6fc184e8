import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Socket } from 'node:net';
import { closeServer, listenOnFreePort } from '../support/listen';
import { createLogger, type Logger } from '../../lib/observe/log';
import type { ArtifactsCacheConfig } from '../../lib/config/types';
import { answerArtifactError } from '../../lib/artifacts/artifact-route';
import type { ArtifactServer } from '../../lib/artifacts/artifact-server';

// Shared by the cache integration tests: an origin that counts at the far end and can be
// told to throttle, cut, lie or corrupt; a gateway-like server in front of an ArtifactServer;
// a device download that hashes as it streams.

export const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

export interface OriginBehaviour {
  /** Bytes per second per response (0 = unthrottled). */
  throttle?: number;
  /** Cut the connection after sending this many body bytes, once per listed offset, in order. */
  cutAt?: number[];
  /** Advertise this Content-Length but send the real body (then close). */
  claimedLength?: number;
  /** Every response, including resumes, ends after this absolute offset. */
  truncateAt?: number;
  /** ETag to send; default the body's MD5 (as S3 does for single-part uploads). */
  etag?: string | null;
  /** Send this instead of the body (same length), ETag still that of the body. */
  corrupt?: boolean;
  /** Omit Content-Length (chunked). */
  noLength?: boolean;
  /** Answer every request with this status and an empty body. */
  status?: number;
  /** Last-Modified to send (none by default). */
  lastModified?: string;
}

export interface TestOrigin {
  url(name: string): URL;
  requests: { range?: string }[];
  bytesSent: number;
  /** Responses that sent the whole object from offset 0. */
  fullDownloads: number;
  behaviour: OriginBehaviour;
  close(): Promise<void>;
}

export async function startOrigin(body: Buffer, behaviour: OriginBehaviour = {}): Promise<TestOrigin> {
  const sockets = new Set<Socket>();
  const origin: TestOrigin = {
    url: (name) => new URL(`http://127.0.0.1:${port}/bucket/${name}?X-Amz-Signature=${randomBytes(8).toString('hex')}`),
    requests: [],
    bytesSent: 0,
    fullDownloads: 0,
    behaviour,
    close: async () => {
      for (const s of sockets) s.destroy();
      await closeServer(server);
    },
  };
  const server = http.createServer(async (req, res) => {
    const b = origin.behaviour;
    const range = req.headers.range;
    origin.requests.push({ range });
    if (b.status) {
      res.writeHead(b.status, { 'Content-Length': 0 }).end();
      return;
    }
    const size = body.length;
    // A suffix range (bytes=-N) as S3 answers it: the last N bytes.
    const suffix = range ? /^bytes=-(\d+)$/.exec(range) : null;
    const m = suffix
      ? ([range, String(Math.max(0, size - Number(suffix[1]))), ''] as const)
      : range
        ? /^bytes=(\d+)-(\d*)$/.exec(range)
        : null;
    let start = 0;
    let end = size - 1;
    if (m) {
      start = Number(m[1]);
      if (m[2]) end = Math.min(size - 1, Number(m[2]));
      if (start >= size) {
        res.writeHead(416, { 'Content-Range': `bytes */${b.claimedLength ?? size}` }).end();
        return;
      }
    }
    const etag = b.etag === undefined ? `"${md5(body)}"` : b.etag;
    const headers: http.OutgoingHttpHeaders = { 'Content-Type': 'application/octet-stream' };
    if (etag !== null) headers.ETag = etag;
    if (b.lastModified !== undefined) headers['Last-Modified'] = b.lastModified;
    if (!b.noLength) headers['Content-Length'] = m ? end - start + 1 : (b.claimedLength ?? size);
    if (m) headers['Content-Range'] = `bytes ${start}-${end}/${b.claimedLength ?? size}`;
    res.writeHead(m ? 206 : 200, headers);
    const source = b.corrupt ? Buffer.from(body).reverse() : body;
    let stop = end + 1;
    if (b.truncateAt !== undefined) stop = Math.min(stop, b.truncateAt);
    const cut = b.cutAt?.[0];
    if (cut !== undefined && cut > start && cut < stop) {
      stop = cut;
      b.cutAt!.shift();
    }
    const chunk = 16 * 1024;
    let pos = start;
    while (pos < stop && !res.destroyed) {
      const n = Math.min(chunk, stop - pos);
      const ok = res.write(source.subarray(pos, pos + n));
      origin.bytesSent += n;
      pos += n;
      if (b.throttle) await new Promise((r) => setTimeout(r, (n / b.throttle!) * 1000));
      else if (!ok) await new Promise((r) => res.once('drain', r));
    }
    if (pos === size && start === 0) origin.fullDownloads++;
    if (pos === end + 1 && !b.noLength && b.claimedLength === undefined) res.end();
    else if (b.noLength && pos === end + 1) res.end();
    else res.socket?.destroy();
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = await listenOnFreePort(server);
  return origin;
}

/** A server standing where the gateway's artifact route would (and answering its errors as it does): GET /<anything>?o=<origin URL>. */
export async function startFront(
  artifacts: ArtifactServer,
  log: Logger = quietLog(),
): Promise<{ url(origin: URL): string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const o = new URL(req.url ?? '/', 'http://x').searchParams.get('o') ?? '';
    const ctx = { requestId: 'test', log, clientAddress: '127.0.0.1', protocol: 'http' } as const;
    void artifacts.serve(req, res, new URL(o), ctx).catch((err: unknown) => answerArtifactError(req, res, err, ctx));
  });
  const port = await listenOnFreePort(server);
  return { url: (origin) => `http://127.0.0.1:${port}/artifact?o=${encodeURIComponent(origin.href)}`, close: () => closeServer(server) };
}

export interface Download {
  status: number;
  headers: http.IncomingHttpHeaders;
  length: number;
  md5: string;
  /** The body ended cleanly (not a broken connection). */
  complete: boolean;
  body?: Buffer;
}

/** One device download; keeps the body only when asked (small artifacts). */
export function download(
  url: string,
  opts: {
    range?: string;
    method?: string;
    keep?: boolean;
    abortAfter?: number;
    ratePerChunkMs?: number;
    headers?: Record<string, string>;
  } = {},
): Promise<Download> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.range) headers.range = opts.range;
    const req = http.request(url, { method: opts.method ?? 'GET', headers, agent: false }, (res) => {
      const hash = createHash('md5');
      const parts: Buffer[] = [];
      let length = 0;
      let finished = false;
      res.on('data', (c: Buffer) => {
        hash.update(c);
        length += c.length;
        if (opts.keep) parts.push(c);
        if (opts.abortAfter !== undefined && length >= opts.abortAfter) req.destroy();
        if (opts.ratePerChunkMs) {
          res.pause();
          setTimeout(() => res.resume(), opts.ratePerChunkMs);
        }
      });
      res.on('end', () => (finished = true));
      res.on('close', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          length,
          md5: hash.digest('hex'),
          complete: finished && res.complete,
          body: opts.keep ? Buffer.concat(parts) : undefined,
        }),
      );
      res.on('error', () => undefined);
    });
    req.on('error', (err) => (opts.abortAfter !== undefined ? undefined : reject(err)));
    req.end();
  });
}

export function quietLog(): Logger {
  return createLogger({ level: 'fatal', sink: { write: () => true } });
}

export function cacheConfig(dir: string, extra: Partial<ArtifactsCacheConfig> = {}): ArtifactsCacheConfig {
  return { Enabled: true, Path: dir, SignatureSecret: '', LinkExpireDuration: '1h', MaxSize: 0, Prewarm: true, FillRateLimit: 0, ...extra };
}

export async function tempDir(prefix: string): Promise<string> {
  return fsp.mkdtemp(path.join(tmpdir(), prefix));
}

/** Entries published in a cache directory (sidecar present). */
export async function publishedIds(cachePath: string): Promise<string[]> {
  try {
    return (await fsp.readdir(path.join(cachePath, 'v1', 'objects'))).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5));
  } catch {
    return [];
  }
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
