import type http from 'node:http';
import type { CacheLayout } from '../store/cache-layout';
import type { CacheIndex } from '../store/cache-index';
import type { LockTiming } from '../store/fill-lock';
import type { RetryPolicy } from './resumable-download';
import type { SharedCache } from '../shared/s3-shared-cache';
import type { UplinkCap } from './uplink-cap';
import type { Logger } from '../../observe/log';

// What every fill of one cache shares (artifact-cache.ts makes it once): the fill itself
// (artifact-fill.ts) and following another process's fill (follow-other-fill.ts) read it.

export interface FillContext {
  layout: CacheLayout;
  index: CacheIndex;
  log: Logger;
  agentFor?: (url: URL) => http.Agent | undefined;
  retry: RetryPolicy;
  lock: LockTiming;
  /** How often a fill waiting for another process's lock looks again. */
  lockPollMs: number;
  maxSize: number;
  /** The fills this process runs or follows: tmp file → bytes still to come (space they will take). */
  reserved(): ReadonlyMap<string, number>;
  /** Aborted on close(): every fill stops. */
  closing: AbortSignal;
  /** ArtifactsCache.S3: the bucket shared by several gateways, looked at before the origin. */
  shared?: SharedCache;
  /** ArtifactsCache.FillRateLimit: the origin bytes per second all fills on the path share. */
  cap?: UplinkCap;
}
