import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import { createArtifactCache, type ArtifactCache } from '../../lib/cache/artifact-cache';
import { cacheConfig, download, md5, publishedIds, quietLog, startFront, tempDir, waitFor } from './cache-harness';

// Single-flight fills (docs/cache.md), counted at the far end: N devices on a cold artifact through the throttled S3
// store → one full download, identical bytes everywhere, late joiners and Range offsets
// during the fill correct; a device leaving does not stop the fill.

const SIZE = 6 * 1024 * 1024 + 12345;
const RATE = 4 * 1024 * 1024; // ≈ 1.5 s per fill: long enough for everyone to arrive during it
let store: S3Store;
let dir: string;
let body: Buffer;
let artifactFile: string;
const cleanups: (() => Promise<unknown>)[] = [];

before(async () => {
  store = await startS3Store({ throttleBytesPerSecond: RATE });
  dir = await tempDir('cache-sf-');
  body = randomBytes(SIZE);
  artifactFile = path.join(dir, 'artifact.mender');
  await fsp.writeFile(artifactFile, body);
});

after(async () => {
  for (const c of cleanups.reverse()) await c();
  await store.close();
  await fsp.rm(dir, { recursive: true, force: true });
});

async function freshCache(
  name: string,
): Promise<{ cache: ArtifactCache; front: Awaited<ReturnType<typeof startFront>>; cachePath: string }> {
  const cachePath = path.join(dir, name);
  const cache = await createArtifactCache({ config: cacheConfig(cachePath), log: quietLog() });
  const front = await startFront(cache);
  cleanups.push(
    () => cache.close(),
    () => front.close(),
  );
  return { cache, front, cachePath };
}

test('60 devices on a cold artifact: one full origin download, identical bytes, late joiners and ranges correct', async () => {
  const key = 'artifacts/cold-60.mender';
  await store.putObject(key, artifactFile);
  const { front, cachePath } = await freshCache('c60');
  // Every device gets its own presigned URL (fresh signature), as from the Mender server.
  const link = async () => front.url(new URL(await store.presignGet(key, 3600)));

  const downloads: Promise<{ kind: string; range?: [number, number]; d: Awaited<ReturnType<typeof download>> }>[] = [];
  for (let i = 0; i < 60; i++) downloads.push(download(await link()).then((d) => ({ kind: 'full', d })));
  // Late joiners and random Range offsets while the fill runs.
  for (let i = 0; i < 12; i++) {
    await new Promise((r) => setTimeout(r, 60 + Math.random() * 80));
    const start = Math.floor(Math.random() * SIZE);
    const end = i % 2 === 0 ? SIZE - 1 : Math.min(SIZE - 1, start + Math.floor(Math.random() * 200_000));
    const url = await link();
    downloads.push(
      download(url, { range: `bytes=${start}-${i % 2 === 0 ? '' : end}`, keep: true }).then((d) => ({
        kind: 'range',
        range: [start, end] as [number, number],
        d,
      })),
    );
    downloads.push(download(await link()).then((d) => ({ kind: 'full', d })));
  }
  const results = await Promise.all(downloads);
  const expected = md5(body);
  for (const r of results) {
    if (r.kind === 'full') {
      assert.equal(r.d.status, 200);
      assert.equal(Number(r.d.headers['content-length']), SIZE);
      assert.ok(r.d.complete);
      assert.equal(r.d.md5, expected);
    } else {
      const [start, end] = r.range!;
      assert.equal(r.d.status, 206);
      assert.equal(r.d.headers['content-range'], `bytes ${start}-${end}/${SIZE}`);
      assert.ok(r.d.body!.equals(body.subarray(start, end + 1)), `range ${start}-${end}`);
    }
  }
  const stats = store.stats(key);
  assert.equal(stats.fullDownloads, 1);
  assert.equal(stats.requests, 1);
  assert.equal(stats.bytesServed, SIZE);
  assert.equal((await publishedIds(cachePath)).length, 1);

  // Now from disk: the store sees nothing more; Range, 416 and HEAD are exact.
  const again = await download(await link());
  assert.equal(again.md5, expected);
  const tail = await download(await link(), { range: 'bytes=-100', keep: true });
  assert.equal(tail.status, 206);
  assert.ok(tail.body!.equals(body.subarray(SIZE - 100)));
  const beyond = await download(await link(), { range: `bytes=${SIZE}-`, keep: true });
  assert.equal(beyond.status, 416);
  assert.equal(beyond.headers['content-range'], `bytes */${SIZE}`);
  assert.match(beyond.body!.toString(), /"error"/);
  const head = await download(await link(), { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(Number(head.headers['content-length']), SIZE);
  assert.equal(head.length, 0);
  assert.equal(head.headers['content-encoding'], undefined);
  assert.equal(store.stats(key).requests, 1);
});

test('the device that started the fill leaves: the fill completes anyway', async () => {
  const key = 'artifacts/leaver.mender';
  await store.putObject(key, artifactFile);
  const { cache, front, cachePath } = await freshCache('leaver');
  const gone = await download(front.url(new URL(await store.presignGet(key, 3600))), { abortAfter: 64 * 1024 });
  assert.ok(!gone.complete);
  await waitFor(async () => (await publishedIds(cachePath)).length === 1, 15_000, 'publish after the device left');
  await waitFor(() => cache.activeFills === 0, 5_000, 'the fill to settle');
  assert.equal(store.stats(key).fullDownloads, 1);
  const d = await download(front.url(new URL(await store.presignGet(key, 3600))));
  assert.equal(d.md5, md5(body));
  assert.equal(store.stats(key).requests, 1);
});

test('prewarm fills an artifact before any device asks', async () => {
  const key = 'artifacts/prewarm.mender';
  await store.putObject(key, artifactFile);
  store.setThrottle(0);
  try {
    const { cache, front, cachePath } = await freshCache('prewarm');
    const url = new URL(await store.presignGet(key, 3600));
    cache.prewarm(url);
    cache.prewarm(url);
    await waitFor(async () => (await publishedIds(cachePath)).length === 1, 15_000, 'prewarm publish');
    const d = await download(front.url(new URL(await store.presignGet(key, 3600))));
    assert.equal(d.md5, md5(body));
    assert.equal(store.stats(key).requests, 1);
  } finally {
    store.setThrottle(RATE);
  }
});
