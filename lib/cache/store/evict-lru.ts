import { promises as fsp } from 'node:fs';
import { hitsPath, objectPath, sidecarPath, type CacheLayout } from './cache-layout';
import type { CacheIndex } from './cache-index';
import { bytesToComeElsewhere } from './fill-lock';
import type { Logger } from '../../observe/log';
import { cacheMetrics } from '../../observe/metrics';

// Before a fill: does the incoming artifact fit in the free space of the cache's
// filesystem (and under MaxSize, ours, when set)? If not, remove the least recently
// served entries that no device is reading until it does. When even that is not enough,
// nothing is removed and the caller streams the artifact uncached (mender-gateway.md §3.1:
// "remove cached Artifacts that are not being served anymore to clients starting from the
// oldest one").

/**
 * An entry a device was served from this recently is "hot" when evicted: devices are still
 * downloading it (a rollout over a site's fleet) and the next one fetches it over the uplink again.
 */
export const HOT_ENTRY_MS = 3600_000;

/** Room kept free beyond the artifact itself: sidecars, directory blocks. */
export const HEADROOM = 1024 * 1024;

export interface SpaceFacts {
  incoming: number;
  /** Bytes available to us on the cache's filesystem (statfs bavail × bsize). */
  free: number;
  /** Bytes of published entries. */
  used: number;
  /** Bytes still to come for fills already running. */
  reserved: number;
  /** 0 = no cap. */
  maxSize: number;
}

export interface Evictable {
  id: string;
  size: number;
  lastServed: number;
  readers: number;
}

export function planEviction(entries: readonly Evictable[], f: SpaceFacts): { fits: boolean; evict: string[] } {
  let freeShort = f.incoming + f.reserved + HEADROOM - f.free;
  let capShort = f.maxSize > 0 ? f.used + f.reserved + f.incoming - f.maxSize : -Infinity;
  if (freeShort <= 0 && capShort <= 0) return { fits: true, evict: [] };
  if (f.maxSize > 0 && f.incoming > f.maxSize) return { fits: false, evict: [] };
  const evict: string[] = [];
  const idle = entries.filter((e) => e.readers === 0).sort((a, b) => a.lastServed - b.lastServed || a.id.localeCompare(b.id));
  for (const e of idle) {
    if (freeShort <= 0 && capShort <= 0) break;
    evict.push(e.id);
    freeShort -= e.size;
    capShort -= e.size;
  }
  if (freeShort > 0 || capShort > 0) return { fits: false, evict: [] };
  return { fits: true, evict };
}

export async function freeBytes(dir: string): Promise<number> {
  const st = await fsp.statfs(dir);
  return st.bavail * st.bsize;
}

/** Remove a published entry: the sidecar first, so it stops being visible before its bytes go. */
export async function removeEntry(layout: CacheLayout, id: string): Promise<void> {
  await fsp.rm(sidecarPath(layout, id), { force: true });
  await fsp.rm(objectPath(layout, id), { force: true });
  await fsp.rm(hitsPath(layout, id), { force: true });
}

export interface RoomRequest {
  layout: CacheLayout;
  index: CacheIndex;
  incoming: number;
  /** The fills this process runs or follows (tmp file → bytes to come); others' are read from their announcements. */
  reserved: ReadonlyMap<string, number>;
  maxSize: number;
  log: Logger;
}

export async function makeRoom(opts: RoomRequest): Promise<boolean> {
  const { layout, index, log } = opts;
  await index.syncWithDisk();
  const facts: SpaceFacts = {
    incoming: opts.incoming,
    free: await freeBytes(layout.objects),
    used: index.usedBytes(),
    reserved: sum(opts.reserved.values()) + (await bytesToComeElsewhere(layout, opts.reserved)),
    maxSize: opts.maxSize,
  };
  const plan = planEviction(index.all(), facts);
  for (const id of plan.evict) {
    const e = index.get(id);
    // A device may have started reading it while we planned.
    if (!e || e.readers > 0) return makeRoom(opts);
    index.delete(id);
    await removeEntry(layout, id);
    const hot = Date.now() - e.lastServed < HOT_ENTRY_MS;
    cacheMetrics.evicted(hot);
    log.info('cache entry evicted', { key: e.key, size: e.size, hot });
  }
  return plan.fits;
}

function sum(values: Iterable<number>): number {
  let total = 0;
  for (const v of values) total += v;
  return total;
}
