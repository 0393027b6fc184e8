import type http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ArtifactServer } from '../artifacts/artifact-server';
import type { ArtifactsCacheConfig } from '../config/types';
import { createOriginArtifactServer } from '../artifacts/serve-from-origin';
import { GatewayError } from '../http/gateway-error';
import type { RequestContext } from '../http/route';
import type { Logger } from '../observe/log';
import { artifactFill } from './fill/artifact-fill';
import type { FillContext } from './fill/fill-context';
import { cacheKey, entryId } from './store/cache-key';
import { cacheLayout, type CacheLayout } from './store/cache-layout';
import { CacheIndex, readPublished, recordHit, type CacheEntry } from './store/cache-index';
import { inWindow, parsePrewarmWindow, type PrewarmWindow } from '../config/prewarm-window';
import { cacheMetrics } from '../observe/metrics';
import { makeRoom } from './store/evict-lru';
import { FillProgress } from './fill/fill-progress';
import { ReadSizer, type ReadSizeSetting } from './serve/read-size';
import { recoverCache } from './store/recover-cache';
import { DEFAULT_RETRY, type RetryPolicy } from './fill/resumable-download';
import { serveCachedFile } from './serve/serve-cached-file';
import { serveGrowingFile } from './serve/serve-growing-file';
import { SingleFlight } from './fill/single-flight';
import { UplinkCap } from './fill/uplink-cap';
import type { SharedCache, SharedTiming } from './shared/s3-shared-cache';
import { BoundedMap } from '../state/bounded-map';

// The S3 shared cache's modules load only where ArtifactsCache.S3 is on.
const loadSharedCache = () => require('./shared/s3-shared-cache') as typeof import('./shared/s3-shared-cache');

// Features.ArtifactsProxy.ArtifactsCache: one origin download per artifact
// whatever the number of devices or gateway processes, streamed to every waiting device
// as it lands, published only when complete and verified, evicted LRU when space runs
// out, and streamed uncached when it cannot fit.
//
// A request's path: published entry → serve from disk; else join (or start) the fill for
// its key and, once the origin's length is known, follow the growing file; a fill that
// cannot be cached sends every waiting device to the origin server (serve-from-origin.ts), the
// same one that serves with the cache off. Errors are thrown to the artifact route, which
// answers them (and counts a device that left) the same way with the cache on or off.
//
// The rooms (docs/cache.md): store/ (the files on the cache path), shared/ (the S3 bucket),
// fill/ (origin → store), serve/ (store or growing fill → device); this file puts them together.

export interface CacheTuning {
  /** Bytes per read for each serving stream, or 'adaptive' (default). */
  readSize?: ReadSizeSetting;
  retry?: Partial<RetryPolicy>;
  /** proper-lockfile `stale` (ms); the same value must be used by every process on the path. */
  staleMs?: number;
  lockPollMs?: number;
  /** ArtifactsCache.S3 timings. */
  shared?: Partial<SharedTiming>;
  /** Ages what the cache remembers in memory (monotonic by default). */
  clock?: () => number;
}

export interface ArtifactCacheOptions {
  config: ArtifactsCacheConfig;
  log: Logger;
  agentFor?: (url: URL) => http.Agent | undefined;
  /** The configured origin idle timeout (UpstreamServer.Timeout), for fills and uncached serving alike. */
  timeoutMs?: number;
  tuning?: CacheTuning;
  /** The bucket shared with other gateways (made by createArtifactCache from ArtifactsCache.S3). */
  shared?: SharedCache;
}

/** Embedded disks can stall for seconds on fsync; a lock refreshed every 10 s and stale after 20 s rides that out. */
const DEFAULT_STALE_MS = 20_000;

export class ArtifactCache implements ArtifactServer {
  readonly layout: CacheLayout;
  readonly index: CacheIndex;
  private readonly fills = new SingleFlight<FillProgress>();
  private readonly running = new Set<Promise<void>>();
  private readonly closing = new AbortController();
  private readonly sizer: ReadSizer;
  private readonly fillContext: FillContext;
  /**
   * Sizes of artifacts that did not fit last time (a fill that met ENOSPC): checked before asking
   * the origin again. A day on, a fill is tried again anyway; at most 1,000 (~0.35 MB), the
   * least recently checked going first: a forgotten one costs one failed fill.
   */
  private readonly tooBig: BoundedMap<string, number>;
  private readonly window: PrewarmWindow | null;
  /** Artifacts the cache cannot hold are streamed by the one origin server. */
  private readonly uncached: ArtifactServer;

  constructor(private readonly opts: ArtifactCacheOptions) {
    const { config, log } = opts;
    const tuning = opts.tuning ?? {};
    this.layout = cacheLayout(config.Path);
    this.index = new CacheIndex(this.layout, tuning.clock);
    this.tooBig = new BoundedMap({ maxEntries: 1000, maxAgeMs: 24 * 3600_000 }, tuning.clock);
    this.window = parsePrewarmWindow(config.PrewarmWindow ?? '');
    this.sizer = new ReadSizer(tuning.readSize ?? 'adaptive');
    const staleMs = tuning.staleMs ?? DEFAULT_STALE_MS;
    this.fillContext = {
      layout: this.layout,
      index: this.index,
      log: log.child({ component: 'artifact-cache' }),
      agentFor: opts.agentFor,
      retry: { ...DEFAULT_RETRY, ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }), ...tuning.retry },
      lock: { staleMs, updateMs: Math.max(1000, Math.floor(staleMs / 2)) },
      lockPollMs: tuning.lockPollMs ?? 250,
      maxSize: config.MaxSize,
      reserved: () => this.reservedBytes(),
      closing: this.closing.signal,
      shared: opts.shared,
      // No registration, no timer when there is no cap.
      cap:
        config.FillRateLimit > 0
          ? new UplinkCap({ layout: this.layout, bytesPerSecond: config.FillRateLimit, log: log.child({ component: 'artifact-cache' }) })
          : undefined,
    };
    this.uncached = createOriginArtifactServer({
      upstream: { originAgent: (url) => opts.agentFor?.(url), timeoutMs: this.fillContext.retry.timeoutMs },
    });
  }

  async serve(req: IncomingMessage, res: ServerResponse, origin: URL, ctx: RequestContext): Promise<void> {
    const key = cacheKey(origin);
    const id = entryId(key);
    // A few rounds: an entry can be evicted, or published by another process, between looks.
    for (let round = 0; round < 4; round++) {
      const entry = this.index.get(id) ?? (this.fills.get(id) ? undefined : await this.adopt(id));
      if (round === 0) {
        if (entry) {
          cacheMetrics.hit(id);
          recordHit(this.layout, id);
        } else cacheMetrics.miss();
      }
      if (entry) {
        if (await serveCachedFile(req, res, entry, { layout: this.layout, index: this.index, sizer: this.sizer })) return;
        this.index.delete(id);
        continue;
      }
      if (!this.fills.get(id) && !(await this.mayFit(id))) return this.uncached.serve(req, res, origin, ctx);
      const fill = this.startFill(id, key, origin);
      const start = await fill.started;
      if (start.kind === 'growing') return serveGrowingFile(req, res, fill, this.sizer);
      if (start.kind === 'uncached') return this.uncached.serve(req, res, origin, ctx);
    }
    throw new GatewayError('SERVICE_UNAVAILABLE', 'artifact cache entry keeps changing, try again');
  }

  /** Start filling the cache for an artifact no device asked for yet (ArtifactsCache.Prewarm, within PrewarmWindow). */
  prewarm(origin: URL): void {
    if (!this.opts.config.Prewarm || this.closing.signal.aborted || !inWindow(this.window)) return;
    const id = entryId(cacheKey(origin));
    if (this.index.get(id)) return;
    this.startFill(id, cacheKey(origin), origin);
  }

  /**
   * Fill the cache with this artifact now (`mender-gateway cache prewarm`), joining the fill
   * already running for it here or in another process: the published entry, or the progress
   * to watch (it ends 'done' or 'failed').
   */
  fill(origin: URL): { published: CacheEntry } | { progress: FillProgress } {
    const key = cacheKey(origin);
    const id = entryId(key);
    const published = this.index.get(id);
    if (published) return { published };
    return { progress: this.startFill(id, key, origin) };
  }

  /** Stop every fill (nothing half-done is published) and wait for them to clean up. */
  async close(): Promise<void> {
    this.closing.abort(new GatewayError('SERVICE_UNAVAILABLE', 'gateway is shutting down'));
    await Promise.allSettled([...this.running]);
    await this.opts.shared?.close();
  }

  /** Fills running in this process (for tests and metrics). */
  get activeFills(): number {
    return this.fills.size;
  }

  /** Fills running in this process, for the status page. */
  fillsInProgress(): Iterable<FillProgress> {
    return this.fills.values();
  }

  private startFill(id: string, key: string, origin: URL): FillProgress {
    return this.fills.join(
      id,
      () => new FillProgress(id, key),
      (p) => {
        const run = artifactFill(p, origin, this.fillContext).then(() => {
          cacheMetrics.fillDone(p.state === 'done');
          if (p.state === 'failed' && (p.error?.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOSPC') this.tooBig.set(id, p.size);
          else if (p.state === 'done') this.tooBig.delete(id);
        });
        this.running.add(run);
        return run.finally(() => this.running.delete(run));
      },
    ).value;
  }

  private async adopt(id: string) {
    const entry = await readPublished(this.layout, id);
    return entry ? this.index.set(entry) : undefined;
  }

  /** Artifacts remembered as too big for the cache, for the tests of the bound. */
  get knownTooBig(): number {
    this.tooBig.prune();
    return this.tooBig.size;
  }

  /** False only for an artifact known not to fit that still does not, even after eviction. */
  private async mayFit(id: string): Promise<boolean> {
    const size = this.tooBig.get(id);
    if (size === undefined) return true;
    // A cache directory that cannot even be measured (deleted under us) is the fill's to
    // handle: it streams uncached and makes the layout again.
    const fits = await makeRoom({
      layout: this.layout,
      index: this.index,
      incoming: size,
      reserved: this.reservedBytes(),
      maxSize: this.opts.config.MaxSize,
      log: this.fillContext.log,
    }).catch(() => true);
    if (fits) this.tooBig.delete(id);
    return fits;
  }

  /** Fills this process runs or follows: tmp file → bytes still to come. */
  private reservedBytes(): Map<string, number> {
    const bytes = new Map<string, number>();
    for (const p of this.fills.values()) if (p.state === 'growing') bytes.set(p.path, p.size - p.written);
    return bytes;
  }
}

export async function createArtifactCache(opts: ArtifactCacheOptions): Promise<ArtifactCache> {
  const { config } = opts;
  if (typeof config.Path !== 'string' || config.Path === '')
    throw new TypeError('expected ArtifactsCache.Path to be a directory, got an empty value');
  if (!Number.isSafeInteger(config.MaxSize) || config.MaxSize < 0)
    throw new TypeError(`expected ArtifactsCache.MaxSize to be a byte count ≥ 0, got ${String(config.MaxSize)}`);
  const rate = config.FillRateLimit ?? 0;
  if (!Number.isSafeInteger(rate) || rate < 0)
    throw new TypeError(`expected ArtifactsCache.FillRateLimit to be bytes per second ≥ 0, got ${String(rate)}`);
  const shared = config.S3?.Enabled
    ? (opts.shared ?? loadSharedCache().createSharedCache(config.S3, opts.log, opts.tuning?.shared))
    : undefined;
  const cache = new ArtifactCache({ ...opts, shared });
  const staleMs = opts.tuning?.staleMs ?? DEFAULT_STALE_MS;
  await recoverCache({ layout: cache.layout, index: cache.index, log: opts.log.child({ component: 'artifact-cache' }), staleMs });
  return cache;
}
