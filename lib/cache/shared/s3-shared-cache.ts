import { setTimeout as sleep } from 'node:timers/promises';
import type { ArtifactsCacheS3Config } from '../../config/types';
import type { Logger } from '../../observe/log';
import { parseSidecar, type Sidecar } from '../store/cache-index';
import { plainMd5Etag } from '../store/cache-key';
import { Bucket } from './s3-bucket';
import { BucketLocks, type BucketLock } from './s3-bucket-lock';
import { createPresigner, type Presigner } from './s3-presigner';
import { BucketUnreachable, s3ErrorCode } from './s3-request';
import { MAX_SINGLE_PUT, uploadGrowing, type GrowingFill } from './s3-upload';

// The bucket as every gateway's second-level cache. On a local miss, before the
// origin: the bucket copy if there is one (its presigned GET goes through the same resumable
// download, verify and publish as an origin fill); else the bucket lock, and the one gateway
// holding it fills from the origin and uploads what it published; the others wait for the
// copy. Any bucket trouble: fill from the origin (one warn line per outage), look again later.

export interface SharedTiming {
  /** How often a gateway waiting for another's origin fill looks for the bucket copy. */
  pollMs: number;
  leaseMs: number;
  settleMs: number;
  /** One bucket request's idle timeout. */
  timeoutMs: number;
  /** After a failure, the bucket is left alone this long. */
  retryMs: number;
}

export const DEFAULT_SHARED_TIMING: SharedTiming = { pollMs: 500, leaseMs: 30_000, settleMs: 1_000, timeoutMs: 10_000, retryMs: 30_000 };

/** Failures of our own disk say nothing about the bucket. */
const LOCAL_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EROFS', 'EACCES', 'EPERM', 'ENOENT']);

export type Claim =
  /** Fill from the bucket copy at `url`; `sidecar` is what its uploader verified. */
  | { kind: 'bucket'; url: URL; sidecar: Sidecar }
  /** Fill from the origin; with a lock, upload the result and release it. */
  | { kind: 'origin'; lock: BucketLock | null };

export class SharedCache {
  private readonly bucket: Bucket;
  private readonly locks: BucketLocks;
  private readonly uploads = new Set<Promise<void>>();
  /** Uploads under way, aborted on close (a finished request keeps no abort listener). */
  private readonly aborts = new Set<AbortController>();
  private closed = false;
  /** Monotonic: a wall clock stepped back must not keep the bucket out of use for as long. */
  private downUntil = 0;
  private outage = false;

  constructor(
    presigner: Presigner,
    prefix: string,
    private readonly log: Logger,
    private readonly timing: SharedTiming,
  ) {
    this.bucket = new Bucket(presigner, prefix, timing.timeoutMs);
    this.locks = new BucketLocks(this.bucket, timing, () =>
      this.log.warn(
        'shared cache bucket ignores conditional writes (If-None-Match): two gateways missing at once may both fill from the origin',
        { bucket: this.bucket.where },
      ),
    );
  }

  /** Where the fill for `id` comes from. Never throws for bucket trouble, only when `signal` aborts. */
  async claim(id: string, key: string, signal: AbortSignal): Promise<Claim> {
    if (performance.now() < this.downUntil) return { kind: 'origin', lock: null };
    try {
      for (;;) {
        const found = await this.find(id, key);
        if (found) return this.reachable(found);
        const lock = await this.locks.tryTake(id);
        if (lock === 'held') await sleep(this.timing.pollMs, undefined, { signal });
        else if (lock !== 'retry') {
          // The holder may have finished between our look and our lock.
          const late = await this.find(id, key).catch(() => null);
          if (late) await lock.release();
          return this.reachable(late ?? { kind: 'origin', lock });
        }
      }
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      this.down(err as Error);
      return { kind: 'origin', lock: null };
    }
  }

  /**
   * Stream a fill from the origin to the bucket while it lands, then release the lock (issue
   * 11: once per key). `verified` gives the sidecar once published, null if the fill failed.
   */
  share(p: GrowingFill, lock: BucketLock, verified: Promise<Sidecar | null>): void {
    if (p.size > MAX_SINGLE_PUT) {
      this.log.warn('artifact not shared in the bucket: larger than one PUT allows (5 GiB)', { key: p.key, size: p.size });
      void lock.release();
      return;
    }
    const abort = new AbortController();
    this.aborts.add(abort);
    const run = uploadGrowing(this.bucket, p, verified, abort.signal)
      .then(({ shared, ms }) => {
        if (!shared) return;
        this.reachable(null);
        this.log.info('artifact shared in the bucket', { key: p.key, size: p.size, ms });
      })
      .catch((err: Error) => {
        if (this.closed || p.state === 'failed') return; // the fill's own failure is logged by the fill
        if (err instanceof BucketUnreachable) this.down(err);
        else this.log.warn('artifact not shared in the bucket', { key: p.key, cause: err.message });
      })
      .finally(() => {
        this.aborts.delete(abort);
        return lock.release();
      });
    this.uploads.add(run);
    void run.finally(() => this.uploads.delete(run));
  }

  /** A fill from the bucket copy failed (bucket gone mid-way, or a copy that does not verify). */
  fillFailed(err: Error): void {
    if (LOCAL_ERRORS.has((err as NodeJS.ErrnoException).code ?? '')) return;
    this.down(err);
  }

  /** Stop uploads (their locks are released) and wait for them. */
  async close(): Promise<void> {
    this.closed = true;
    for (const ac of this.aborts) ac.abort();
    await Promise.allSettled([...this.uploads]);
  }

  private async find(id: string, key: string): Promise<Claim | null> {
    const got = await this.bucket.send('GET', this.bucket.sidecarKey(id));
    if (got.status === 404) return null;
    if (got.status !== 200) throw new BucketUnreachable(`sidecar GET answered ${got.status} ${s3ErrorCode(got)}`);
    const sidecar = parseSidecar(got.text);
    if (!sidecar || sidecar.key !== key) return null;
    // The bytes object must be the one the sidecar describes (a re-upload may be under way).
    const head = await this.bucket.send('HEAD', this.bucket.objectKey(id));
    if (head.status === 404) return null;
    if (head.status !== 200) throw new BucketUnreachable(`object HEAD answered ${head.status}`);
    const etag = plainMd5Etag(head.headers.etag as string | undefined);
    if (Number(head.headers['content-length']) !== sidecar.size || (etag !== null && etag !== sidecar.md5)) return null;
    return { kind: 'bucket', url: await this.bucket.getUrl(this.bucket.objectKey(id)), sidecar };
  }

  private reachable<T>(value: T): T {
    if (this.outage) this.log.info('shared cache bucket reachable again', { bucket: this.bucket.where });
    this.outage = false;
    return value;
  }

  private down(err: Error): void {
    this.downUntil = performance.now() + this.timing.retryMs;
    if (this.outage) return;
    this.outage = true;
    this.log.warn(
      `shared cache bucket unreachable: filling from the origin, trying the bucket again in ${Math.round(this.timing.retryMs / 1000)} s`,
      { bucket: this.bucket.where, cause: err.message },
    );
  }
}

export function createSharedCache(s3: ArtifactsCacheS3Config, log: Logger, timing: Partial<SharedTiming> = {}): SharedCache {
  const prefix = s3.Prefix === '' || s3.Prefix.endsWith('/') ? s3.Prefix : `${s3.Prefix}/`;
  return new SharedCache(createPresigner(s3), prefix, log.child({ component: 'shared-cache' }), { ...DEFAULT_SHARED_TIMING, ...timing });
}
