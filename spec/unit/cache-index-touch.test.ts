import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CacheIndex, type CacheEntry } from '../../lib/cache/store/cache-index';
import { cacheLayout, objectPath } from '../../lib/cache/store/cache-layout';

// The index remembers when it last set an entry's mtime (at most once a minute per entry):
// a mark per entry served, kept for that minute and no longer, at most 10,000.

const entry = (id: string): CacheEntry => ({ id, key: id, size: 1, etag: null, lastServed: 0, readers: 0 });

test('30,000 entries served: at most 10,000 touch marks, a mark gone after a minute and the mtime set again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'touch-'));
  try {
    const layout = cacheLayout(dir);
    let now = 0;
    const index = new CacheIndex(layout, () => now);
    // Files that are not there: the mtime update fails quietly, the marks are what is measured.
    for (let i = 0; i < 30_000; i++) index.touch(entry(`missing-${i}`), 1_000_000);
    assert.equal(index.touchMarks, 10_000);

    mkdirSync(layout.objects, { recursive: true });
    const id = 'a'.repeat(64);
    writeFileSync(objectPath(layout, id), 'x');
    const served = entry(id);
    index.touch(served, 2_000_000);
    index.touch(served, 2_030_000); // within the minute: not set again
    await sleep(50);
    assert.equal(statSync(objectPath(layout, id)).mtimeMs, 2_000_000);
    now = 60_000;
    index.touch(served, 3_000_000);
    await sleep(50);
    assert.equal(statSync(objectPath(layout, id)).mtimeMs, 3_000_000, 'a minute on: the mark went, the mtime follows');
    assert.equal(index.touchMarks, 1, 'the marks of a minute ago went');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
