import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { plainMd5Etag } from '../store/cache-key';
import { ensureLayout, objectPath, sidecarPath, tmpPath } from '../store/cache-layout';
import { readPublished, type Sidecar } from '../store/cache-index';
import { makeRoom } from '../store/evict-lru';
import { tryFillLock, type HeldLock } from '../store/fill-lock';
import type { FillProgress } from './fill-progress';
import type { FillContext } from './fill-context';
import { FOLLOW_POLL_MS, followOtherFill } from './follow-other-fill';
import { NoContentLength, OriginRefused, resumableDownload, SinkRefused } from './resumable-download';
import { keepPartial, takePartial } from '../store/partial-fill';
import type { Claim } from '../shared/s3-shared-cache';
import type { FillShare } from './uplink-cap';
import { GatewayError } from '../../http/gateway-error';
import { redactUrl } from '../../observe/log';

// One fill: lock → (published meanwhile? done) → origin → tmp file ('wx', this process's
// own name) with MD5 and count while streaming → verify length and plain-MD5 ETag → fsync
// → rename bytes → rename sidecar (the commit point) → index. Any failure removes the tmp
// file and publishes nothing (STYLE principle 7; peers-and-performance §5 guarantee 1).

const CACHE_DIR_ERRORS = new Set(['EROFS', 'EACCES', 'EPERM', 'ENOENT', 'ENOTDIR']);

export async function artifactFill(p: FillProgress, origin: URL, ctx: FillContext): Promise<void> {
  const started = performance.now();
  try {
    const lock = await lockOrWait(p, ctx);
    if (lock === null) return;
    if (p.followed) {
      await lock.release(); // published by the holder while we took the lock
      return;
    }
    try {
      await fillLocked(p, origin, ctx, lock);
    } finally {
      await lock.release();
    }
    if (p.state === 'done' && p.size > 0)
      ctx.log.info('artifact cached', { key: p.key, size: p.size, ms: Math.round(performance.now() - started) });
  } catch (err) {
    if (err instanceof SinkRefused || err instanceof NoContentLength) {
      ctx.log.warn('artifact served uncached', { key: p.key, reason: err.message });
      p.skip({ kind: 'uncached', reason: err.message });
      return;
    }
    // The cache directory cannot take a fill (read-only, not ours, deleted under us): devices
    // stream from the origin instead, and a deleted layout is made again for the next fill.
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (p.state === 'starting' && CACHE_DIR_ERRORS.has(code)) {
      if (code === 'ENOENT') await ensureLayout(ctx.layout).catch(() => undefined);
      ctx.log.warn('artifact served uncached: the cache directory cannot take it', { key: p.key, reason: (err as Error).message });
      p.skip({ kind: 'uncached', reason: code });
      return;
    }
    const gw =
      err instanceof GatewayError ? err : new GatewayError('SERVICE_UNAVAILABLE', 'artifact cache fill failed, try again', { cause: err });
    // Stopped by our own close (shutdown, Ctrl-C of a prewarm) is not a failure of the fill.
    if (ctx.closing.aborted) ctx.log.info('artifact fill stopped: closing', { key: p.key, written: p.written });
    else
      ctx.log.error('artifact fill failed', {
        key: p.key,
        origin: redactUrl(origin.href),
        written: p.written,
        cause: (err as Error).message,
      });
    p.fail(gw);
  }
}

/**
 * The lock, or null once another process has published the entry while we waited. While
 * it holds the lock, our devices follow its tmp file (a sibling worker's fill).
 */
async function lockOrWait(p: FillProgress, ctx: FillContext): Promise<HeldLock | null> {
  for (;;) {
    if (ctx.closing.aborted) throw new GatewayError('SERVICE_UNAVAILABLE', 'gateway is shutting down');
    const lock = await tryFillLock(ctx.layout, p.id, ctx.lock);
    if (lock) {
      if (!p.followed || (await adoptPublished(p, ctx))) return lock;
      // The holder stopped without publishing (died, or its fill failed): our followers
      // were served from its file, so they are cut and resume; the next request fills anew.
      await lock.release();
      throw new GatewayError('SERVICE_UNAVAILABLE', 'the fill this download followed stopped, try again');
    }
    if (await adoptPublished(p, ctx)) return null;
    await followOtherFill(p, ctx);
    const pause = p.followed ? Math.min(ctx.lockPollMs, FOLLOW_POLL_MS) : ctx.lockPollMs;
    await sleep(pause, undefined, { signal: ctx.closing }).catch(() => undefined);
  }
}

async function adoptPublished(p: FillProgress, ctx: FillContext): Promise<boolean> {
  const entry = await readPublished(ctx.layout, p.id);
  if (!entry) return false;
  ctx.index.set(entry);
  if (p.state === 'growing')
    p.publish(); // followers hold the holder's file open: all bytes, verified
  else p.skip({ kind: 'published' });
  return true;
}

async function fillLocked(p: FillProgress, origin: URL, ctx: FillContext, lock: HeldLock): Promise<void> {
  if (await adoptPublished(p, ctx)) return;
  const signal = AbortSignal.any([ctx.closing, lock.signal]);
  const tmp = tmpPath(ctx.layout, p.id);
  const tmpMeta = tmpPath(ctx.layout, p.id, '.json');
  // Shared cache (docs/cache.md): the bucket copy, or the bucket lock that makes this gateway the origin's one filler.
  const claim: Claim | null = ctx.shared ? await ctx.shared.claim(p.id, p.key, signal) : null;
  const source = claim?.kind === 'bucket' ? claim.url : origin;
  let bucketLock = claim?.kind === 'origin' ? claim.lock : null;
  let verified: (meta: Sidecar | null) => void = () => undefined;
  // Bytes an earlier fill left when its process closed (partial-fill.ts); the origin is asked for the rest.
  let resume = source === origin ? await takePartial(ctx.layout, p.id, p.key, tmp) : null;
  const fh = await fsp.open(tmp, resume ? 'r+' : 'wx');
  let open = true;
  // The uplink cap is for the origin; a copy from the shared bucket is not metered.
  let share: FillShare | undefined;
  try {
    if (ctx.cap && source === origin) share = await ctx.cap.register();
    let md5 = resume?.md5 ?? createHash('md5');
    let position = resume?.offset ?? 0;
    const download = () =>
      resumableDownload(
        source,
        {
          start: async (size, etag, lastModified) => {
            const fits = await makeRoom({
              layout: ctx.layout,
              index: ctx.index,
              incoming: size,
              reserved: ctx.reserved(),
              maxSize: ctx.maxSize,
              log: ctx.log,
            });
            if (!fits) throw new SinkRefused(`no room for ${size} bytes in the cache`);
            // A bucket copy shows the origin's validators, so devices see one ETag and Last-Modified from every gateway.
            const shown =
              claim?.kind === 'bucket'
                ? { etag: claim.sidecar.etag, lastModified: claim.sidecar.lastModified ?? null }
                : { etag, lastModified };
            p.begin(size, shown.etag, tmp, objectPath(ctx.layout, p.id), shown.lastModified);
            if (position > 0) {
              p.advance(position);
              ctx.log.info('artifact fill resumed from a partial file', { key: p.key, offset: position, size });
            }
            await lock.announce({ tmp, size, ...shown, key: p.key });
            if (bucketLock) {
              // Shared cache: the bucket gets the bytes as they land; the upload owns the lock now.
              ctx.shared!.share(p, bucketLock, new Promise((resolve) => (verified = resolve)));
              bucketLock = null;
            }
          },
          write: async (chunk) => {
            // Before the write: devices following the file stream what has landed meanwhile,
            // and the awaited write stops reading from the origin socket.
            if (share) await share.take(chunk.length, signal);
            md5.update(chunk);
            await writeAll(fh, chunk, position);
            position += chunk.length;
            p.advance(chunk.length);
          },
        },
        {
          signal,
          agent: source === origin ? ctx.agentFor?.(origin) : undefined,
          retry: ctx.retry,
          onRetry: (offset, err) => ctx.log.warn('artifact origin cut, resuming', { key: p.key, offset, cause: err.message }),
          from: resume ? { offset: resume.offset, size: resume.size, etag: resume.etag } : undefined,
        },
      );
    let got: { size: number; etag: string | null; lastModified: string | null };
    try {
      got = await download();
    } catch (err) {
      // The origin would not continue the partial file (another ETag, no Range): start over.
      if (!resume || !(err instanceof OriginRefused) || p.state !== 'starting') throw err;
      ctx.log.info('partial file not resumable, downloading again', { key: p.key, reason: err.message });
      resume = null;
      md5 = createHash('md5');
      position = 0;
      await fh.truncate(0);
      got = await download();
    }
    const digest = md5.digest('hex');
    const etagMd5 = plainMd5Etag(got.etag);
    if (p.written !== got.size) throw new OriginRefused('ORIGIN_ERROR', `artifact origin sent ${p.written} of ${got.size} bytes`);
    if (etagMd5 !== null && etagMd5 !== digest) throw new OriginRefused('ORIGIN_ERROR', 'artifact bytes do not match the origin ETag');
    if (claim?.kind === 'bucket' && claim.sidecar.md5 !== digest)
      throw new OriginRefused('ORIGIN_ERROR', 'bucket copy does not match its metadata (MD5 differs)');
    await fh.sync();
    open = false;
    await fh.close();
    if (signal.aborted) throw signal.reason;
    // A bucket copy keeps the origin's ETag, so devices see the same validator from every gateway.
    const etag = claim?.kind === 'bucket' ? claim.sidecar.etag : got.etag;
    const lastModified = claim?.kind === 'bucket' ? (claim.sidecar.lastModified ?? null) : got.lastModified;
    const meta: Sidecar = { version: 1, key: p.key, size: got.size, etag, lastModified, md5: digest, storedAt: new Date().toISOString() };
    await writeDurable(tmpMeta, JSON.stringify(meta));
    await fsp.rename(tmp, objectPath(ctx.layout, p.id));
    await fsp.rename(tmpMeta, sidecarPath(ctx.layout, p.id));
    await syncDir(ctx.layout.objects);
    ctx.index.set({ id: p.id, key: p.key, size: got.size, etag, lastModified, lastServed: Date.now(), readers: 0 });
    p.publish();
    verified(meta);
  } catch (err) {
    // A bucket copy that broke off: the next fill of any key goes to the origin for a while.
    if (claim?.kind === 'bucket' && !signal.aborted && !(err instanceof SinkRefused)) ctx.shared!.fillFailed(err as Error);
    if (
      open &&
      ctx.closing.aborted &&
      source === origin &&
      p.state === 'growing' &&
      p.etag !== null &&
      p.written > 0 &&
      p.written < p.size
    ) {
      // Closing (shutdown, Ctrl-C of a prewarm): keep what arrived for the next fill to resume.
      open = false;
      await fh.sync().catch(() => undefined);
      await fh.close().catch(() => undefined);
      await keepPartial(ctx.layout, p.id, tmp, { version: 1, key: p.key, size: p.size, etag: p.etag }).catch(() => undefined);
      ctx.log.info('artifact fill stopped, partial file kept', { key: p.key, written: p.written, size: p.size });
    }
    throw err;
  } finally {
    await share?.close();
    verified(null);
    if (bucketLock) void bucketLock.release();
    if (open) await fh.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    await fsp.rm(tmpMeta, { force: true });
  }
}

async function writeAll(fh: fsp.FileHandle, chunk: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < chunk.length) {
    const { bytesWritten } = await fh.write(chunk, off, chunk.length - off, position + off);
    off += bytesWritten;
  }
}

async function writeDurable(file: string, text: string): Promise<void> {
  const fh = await fsp.open(file, 'wx');
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync().catch(() => undefined);
  } finally {
    await fh.close();
  }
}
