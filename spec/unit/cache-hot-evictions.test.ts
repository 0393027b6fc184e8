import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CacheIndex } from '../../lib/cache/store/cache-index';
import { cacheLayout, ensureLayout, objectPath, sidecarPath } from '../../lib/cache/store/cache-layout';
import { HOT_ENTRY_MS, makeRoom } from '../../lib/cache/store/evict-lru';
import { metricsRegistry } from '../../lib/observe/metrics';
import { captureLog } from '../support/capture-log';

// An eviction of an entry devices were served from within the hour is counted apart
// (mender_gateway_cache_hot_evictions_total): the alert "cache evicting hot artifacts" rests on it.

const SIZE = 1000;

async function counter(name: string): Promise<number> {
  const line = (await metricsRegistry.metrics()).split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.slice(name.length + 1) ?? Number.NaN);
}

test('evicting a cold and a hot entry counts two evictions, one of them hot', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hot-evict-'));
  try {
    const layout = cacheLayout(dir);
    await ensureLayout(layout);
    const now = Date.now();
    const served = { cold: now - HOT_ENTRY_MS - 60_000, hot: now - 10 * 60_000 };
    for (const [name, at] of Object.entries(served)) {
      const id = (name === 'cold' ? 'c' : 'f').repeat(64);
      writeFileSync(objectPath(layout, id), Buffer.alloc(SIZE));
      const sidecar = { version: 1, key: name, size: SIZE, etag: null, md5: '', storedAt: new Date(at).toISOString() };
      writeFileSync(sidecarPath(layout, id), JSON.stringify(sidecar));
      utimesSync(objectPath(layout, id), at / 1000, at / 1000);
    }
    const index = new CacheIndex(layout);
    const before = {
      all: await counter('mender_gateway_cache_evictions_total'),
      hot: await counter('mender_gateway_cache_hot_evictions_total'),
    };
    const logs = captureLog('info');

    // MaxSize holds the two entries; an artifact of their size together needs both gone.
    const fits = await makeRoom({ layout, index, incoming: 2 * SIZE, reserved: new Map(), maxSize: 2 * SIZE, log: logs.log });

    assert.equal(fits, true);
    assert.equal(index.all().length, 0);
    assert.equal(await counter('mender_gateway_cache_evictions_total'), before.all + 2);
    assert.equal(await counter('mender_gateway_cache_hot_evictions_total'), before.hot + 1);
    const evicted = logs.lines.filter((l) => l.includes('msg="cache entry evicted"')).map((l) => /key=(\w+) .*hot=(\w+)/.exec(l)?.slice(1));
    assert.deepEqual(
      evicted,
      [
        ['cold', 'false'],
        ['hot', 'true'],
      ],
      'least recently served first, each logged with whether it was hot',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
