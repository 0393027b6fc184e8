// Partial files and the prewarm window, in process: a cache closed mid-fill (a gateway
// shutdown) keeps what arrived and the next fill resumes it with a Range request; an origin
// that changed meanwhile makes it start over; Prewarm outside PrewarmWindow fetches nothing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { createArtifactCache } from '../../lib/cache/artifact-cache';
import { listEntries } from '../../lib/cache/store/cache-inventory';
import { cacheLayout, objectPath } from '../../lib/cache/store/cache-layout';
import { cacheConfig, md5, publishedIds, quietLog, startOrigin, tempDir, waitFor } from './cache-harness';

const MiB = 1024 * 1024;

async function fillUntil(dir: string, url: URL, stopAt: number): Promise<void> {
  const cache = await createArtifactCache({ config: cacheConfig(dir), log: quietLog() });
  const r = cache.fill(url);
  assert.ok('progress' in r);
  await waitFor(() => r.progress.written >= stopAt, 10_000, `${stopAt} bytes`);
  await cache.close();
}

async function fillAll(dir: string, url: URL) {
  const cache = await createArtifactCache({ config: cacheConfig(dir), log: quietLog() });
  try {
    const r = cache.fill(url);
    assert.ok('progress' in r);
    await waitFor(() => r.progress.state === 'done' || r.progress.state === 'failed', 20_000, 'the fill');
    return r.progress;
  } finally {
    await cache.close();
  }
}

test('a cache closed mid-fill keeps a partial file nothing serves; the next fill resumes it with one Range request', async () => {
  const dir = await tempDir('cache-partial-');
  const body = randomBytes(4 * MiB);
  const origin = await startOrigin(body, { throttle: 2 * MiB });
  try {
    const url = origin.url('a.mender');
    await fillUntil(dir, url, MiB);
    const [partial] = await listEntries(cacheLayout(dir));
    assert.equal(partial?.state, 'partial');
    assert.ok(partial!.bytes >= MiB && partial!.bytes < body.length, `${partial!.bytes} bytes kept`);
    assert.deepEqual(await publishedIds(dir), [], 'nothing published');
    origin.behaviour.throttle = 0;
    const p = await fillAll(dir, url);
    assert.equal(p.state, 'done');
    assert.deepEqual(
      origin.requests.map((r) => r.range),
      [undefined, `bytes=${partial!.bytes}-`],
    );
    const [id] = await publishedIds(dir);
    assert.equal(md5(await fsp.readFile(objectPath(cacheLayout(dir), id!))), md5(body));
    assert.deepEqual(await fsp.readdir(path.join(dir, 'v1', 'partial')), []);
  } finally {
    await origin.close();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('a partial file whose origin changed (another ETag) is dropped and the artifact downloaded again, whole', async () => {
  const dir = await tempDir('cache-partial-changed-');
  const body = randomBytes(2 * MiB);
  const origin = await startOrigin(body, { throttle: 1 * MiB });
  try {
    const url = origin.url('b.mender');
    await fillUntil(dir, url, 256 * 1024);
    const [partial] = await listEntries(cacheLayout(dir));
    assert.equal(partial?.state, 'partial');
    origin.behaviour = { etag: '"v2"' }; // a new upload under the same name
    const p = await fillAll(dir, url);
    assert.equal(p.state, 'done');
    assert.deepEqual(
      origin.requests.map((r) => r.range),
      [undefined, `bytes=${partial!.bytes}-`, undefined],
      'the resume refused, then one whole download',
    );
    assert.equal((await listEntries(cacheLayout(dir)))[0]?.state, 'complete');
  } finally {
    await origin.close();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('Prewarm outside PrewarmWindow fetches nothing; inside it fills', async () => {
  const dir = await tempDir('cache-window-');
  const origin = await startOrigin(randomBytes(256 * 1024));
  const h = new Date().getHours();
  const hh = (x: number) => String((h + x) % 24).padStart(2, '0');
  try {
    const closed = await createArtifactCache({ config: cacheConfig(dir, { PrewarmWindow: `${hh(2)}:00-${hh(3)}:00` }), log: quietLog() });
    closed.prewarm(origin.url('c.mender'));
    assert.equal(closed.activeFills, 0);
    await closed.close();
    assert.equal(origin.requests.length, 0);
    const open = await createArtifactCache({ config: cacheConfig(dir, { PrewarmWindow: `${hh(0)}:00-${hh(2)}:00` }), log: quietLog() });
    open.prewarm(origin.url('c.mender'));
    assert.equal(open.activeFills, 1);
    await waitFor(async () => (await publishedIds(dir)).length === 1, 10_000, 'the prewarm');
    await open.close();
    assert.equal(origin.requests.length, 1);
  } finally {
    await origin.close();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});
