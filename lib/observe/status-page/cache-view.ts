import type { CacheView } from './status-snapshot';

// Adapts lib/cache's ArtifactCache to what the status page reads. Fills in progress need a
// public accessor on the cache (its SingleFlight map is private): `fillsInProgress()`.

export interface ObservableCache {
  index: { all(): { id: string; key: string; size: number; lastServed: number }[] };
  fillsInProgress?(): Iterable<{ id: string; key: string; size: number; written: number; state: string }>;
}

export function cacheView(cache: ObservableCache): CacheView {
  return {
    entries: () => cache.index.all().map((e) => ({ id: e.id, key: e.key, size: e.size, lastServed: e.lastServed })),
    fills: () =>
      [...(cache.fillsInProgress?.() ?? [])]
        .filter((f) => f.state === 'starting' || f.state === 'growing')
        .map((f) => ({ id: f.id, key: f.key, size: f.size, written: f.written, state: f.state })),
  };
}
