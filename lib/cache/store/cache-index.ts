import { promises as fsp } from 'node:fs';
import { hitsPath, objectPath, sidecarPath, type CacheLayout } from './cache-layout';
import { BoundedMap } from '../../state/bounded-map';

// What this process knows about published entries: size and ETag (from the sidecar),
// when each was last served (the object file's mtime on disk, so LRU order survives a
// restart) and how many devices are reading it right now (eviction skips those).

export interface Sidecar {
  version: 1;
  key: string;
  size: number;
  etag: string | null;
  /** The origin's Last-Modified (absent in sidecars written before it was kept). */
  lastModified?: string | null;
  md5: string;
  storedAt: string;
}

export interface CacheEntry {
  id: string;
  key: string;
  size: number;
  etag: string | null;
  lastModified?: string | null;
  lastServed: number;
  readers: number;
}

export function parseSidecar(text: string): Sidecar | null {
  try {
    const v = JSON.parse(text) as Partial<Sidecar>;
    if (v.version !== 1 || typeof v.key !== 'string' || !Number.isSafeInteger(v.size) || (v.size as number) < 0) return null;
    if (typeof v.md5 !== 'string' || !(v.etag === null || typeof v.etag === 'string')) return null;
    if (v.lastModified !== undefined && v.lastModified !== null && typeof v.lastModified !== 'string') return null;
    return v as Sidecar;
  } catch {
    return null;
  }
}

/** The entry as published on disk (by any process), or null when absent or inconsistent. */
export async function readPublished(layout: CacheLayout, id: string): Promise<CacheEntry | null> {
  let text: string;
  try {
    text = await fsp.readFile(sidecarPath(layout, id), 'utf8');
  } catch {
    return null;
  }
  const meta = parseSidecar(text);
  if (!meta) return null;
  try {
    const st = await fsp.stat(objectPath(layout, id));
    if (!st.isFile() || st.size !== meta.size) return null;
    return {
      id,
      key: meta.key,
      size: meta.size,
      etag: meta.etag,
      lastModified: meta.lastModified ?? null,
      lastServed: st.mtimeMs,
      readers: 0,
    };
  } catch {
    return null;
  }
}

const TOUCH_EVERY_MS = 60_000;

export class CacheIndex {
  private readonly entries = new Map<string, CacheEntry>();
  // When an entry's mtime was last set: an entry past TOUCH_EVERY_MS is due again, so the age
  // forgets nothing still needed. Keyed by entries of the index (delete() drops both), the cap
  // is a backstop for a serve that touches an entry evicted meanwhile. ~240 B each, ~2.3 MB at the cap.
  private readonly touchedOnDisk: BoundedMap<string, number>;

  constructor(
    private readonly layout: CacheLayout,
    /** Ages the touch marks (monotonic; tests pass their own). */
    clock?: () => number,
  ) {
    this.touchedOnDisk = new BoundedMap({ maxEntries: 10_000, maxAgeMs: TOUCH_EVERY_MS }, clock);
  }

  /** Touch marks held, for the tests of the bound. */
  get touchMarks(): number {
    return this.touchedOnDisk.size;
  }

  get(id: string): CacheEntry | undefined {
    return this.entries.get(id);
  }

  set(entry: CacheEntry): CacheEntry {
    const prev = this.entries.get(entry.id);
    if (prev) entry.readers = prev.readers;
    this.entries.set(entry.id, entry);
    return entry;
  }

  delete(id: string): void {
    this.entries.delete(id);
    this.touchedOnDisk.delete(id);
  }

  all(): CacheEntry[] {
    return [...this.entries.values()];
  }

  /**
   * Agree with the disk before planning an eviction: entries other processes (sibling
   * workers, another gateway on the same path) published appear, their serves move our LRU
   * order (the mtime), and entries removed under us go. Only run before a fill, so the
   * directory listing and one stat per entry are cheap next to the download.
   */
  async syncWithDisk(): Promise<void> {
    let names: Set<string>;
    try {
      names = new Set(await fsp.readdir(this.layout.objects));
    } catch {
      return; // layout deleted under us: the fill makes it again
    }
    for (const [id, e] of this.entries) {
      if (!names.has(id) || !names.has(`${id}.json`)) {
        if (e.readers === 0) this.delete(id);
        continue;
      }
      const mtime = await fsp.stat(objectPath(this.layout, id)).then(
        (st) => st.mtimeMs,
        () => 0,
      );
      if (mtime > e.lastServed) e.lastServed = mtime;
    }
    for (const name of names) {
      const m = /^([0-9a-f]{64})\.json$/.exec(name);
      if (!m || this.entries.has(m[1]!) || !names.has(m[1]!)) continue;
      const entry = await readPublished(this.layout, m[1]!);
      if (entry) this.set(entry);
    }
  }

  usedBytes(): number {
    let used = 0;
    for (const e of this.entries.values()) used += e.size;
    return used;
  }

  /** Mark an entry served now; the mtime on disk follows at most once a minute. */
  touch(entry: CacheEntry, now = Date.now()): void {
    entry.lastServed = now;
    const last = this.touchedOnDisk.peek(entry.id) ?? 0;
    if (now - last < TOUCH_EVERY_MS) return;
    this.touchedOnDisk.set(entry.id, now);
    const t = new Date(now);
    fsp.utimes(objectPath(this.layout, entry.id), t, t).catch(() => undefined);
  }
}

/**
 * Count a serve from the cache on disk, for `cache list`: one byte appended (O_APPEND, so
 * every worker and gateway on the path counts without a lock); the count is the file's size.
 */
export function recordHit(layout: CacheLayout, id: string): void {
  fsp.appendFile(hitsPath(layout, id), '.').catch(() => undefined);
}

export async function readHits(layout: CacheLayout, id: string): Promise<number> {
  return fsp.stat(hitsPath(layout, id)).then(
    (st) => st.size,
    () => 0,
  );
}
