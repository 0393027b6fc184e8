import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { createArtifactCache } from '../../lib/cache/artifact-cache';
import {
  cacheConfig,
  download,
  md5,
  publishedIds,
  quietLog,
  startFront,
  startOrigin,
  tempDir,
  waitFor,
  type OriginBehaviour,
} from './cache-harness';

// Hostile or broken origins (peers-and-performance §5): a cut download is resumed with
// Range and the file is byte-identical; an origin that lies about its length, truncates
// for good or sends other bytes than its ETag says publishes nothing, and the devices see
// a broken download or an error they can retry, never a complete short or wrong body.

const SIZE = 1024 * 1024 + 777;
let dir: string;
let body: Buffer;
const cleanups: (() => Promise<unknown>)[] = [];

before(async () => {
  dir = await tempDir('cache-faults-');
  body = randomBytes(SIZE);
});
after(async () => {
  for (const c of cleanups.reverse()) await c();
  await fsp.rm(dir, { recursive: true, force: true });
});

async function setup(name: string, behaviour: OriginBehaviour) {
  const origin = await startOrigin(body, behaviour);
  const cachePath = path.join(dir, name);
  const cache = await createArtifactCache({
    config: cacheConfig(cachePath),
    log: quietLog(),
    tuning: { retry: { retries: 3, backoffMs: 20, maxBackoffMs: 100, timeoutMs: 5_000 } },
  });
  const front = await startFront(cache);
  cleanups.push(
    () => origin.close(),
    () => cache.close(),
    () => front.close(),
  );
  return { origin, cache, front, cachePath, link: () => front.url(origin.url('a.mender')) };
}

test('an origin cut mid-way twice is resumed with Range; the published file is byte-identical', async () => {
  const { origin, cachePath, link } = await setup('cut', { cutAt: [300_000, 700_000], throttle: 2_000_000 });
  const devices = await Promise.all([download(link()), download(link(), { range: 'bytes=500000-', keep: true }), download(link())]);
  assert.equal(devices[0].md5, md5(body));
  assert.equal(devices[2].md5, md5(body));
  assert.ok(devices[1].body!.equals(body.subarray(500_000)));
  // Each resume starts where the fill's file ends: at the cut, or a little before it when the
  // cut's reset made the kernel drop bytes the gateway had not read yet (seen on Node 22: 294912).
  const ranges = origin.requests.map((r) => r.range);
  assert.equal(ranges.length, 3, String(ranges));
  assert.equal(ranges[0], undefined);
  const starts = ranges.slice(1).map((r) => Number(/^bytes=(\d+)-$/.exec(r ?? '')?.[1]));
  assert.ok(starts[0] > 0 && starts[0] <= 300_000, `first resume ${ranges[1]}`);
  assert.ok(starts[1] > 300_000 && starts[1] <= 700_000, `second resume ${ranges[2]}`);
  // The origin sent the object once, plus exactly the bytes lost at each cut.
  assert.equal(origin.bytesSent, SIZE + (300_000 - starts[0]) + (700_000 - starts[1]));
  const [id] = await publishedIds(cachePath);
  assert.ok((await fsp.readFile(path.join(cachePath, 'v1', 'objects', id))).equals(body));
});

for (const [name, behaviour, why] of [
  ['lies about its length', { claimedLength: SIZE + 5000 }, 'Content-Length larger than the object: the resume gets 416'],
  ['truncates for good', { truncateAt: 400_000 }, 'every resume ends at the same place'],
  ['sends bytes that do not match its ETag', { corrupt: true }, 'MD5 of the body differs from the ETag'],
] as [string, OriginBehaviour, string][]) {
  test(`an origin that ${name}: nothing is published, devices see a broken download, a retry works (${why})`, async () => {
    const { origin, cache, cachePath, link } = await setup(name.replace(/\W+/g, '-'), behaviour);
    const devices = await Promise.all([download(link()), download(link()), download(link(), { range: 'bytes=100-' })]);
    for (const d of devices) {
      // Either an error status before any byte, or a started response that was broken off.
      if (d.status === 200 || d.status === 206) assert.ok(!d.complete, `a ${d.status} must not complete`);
      else assert.ok(d.status >= 500, `status ${d.status}`);
    }
    await waitFor(() => cache.activeFills === 0, 10_000, 'the failed fill to settle');
    assert.deepEqual(await publishedIds(cachePath), []);
    assert.deepEqual(await fsp.readdir(path.join(cachePath, 'v1', 'tmp')), []);
    assert.ok(origin.requests.length >= 1);
    // The origin mends its ways: the same request now succeeds and is cached.
    origin.behaviour = {};
    const retry = await download(link());
    assert.equal(retry.status, 200);
    assert.equal(retry.md5, md5(body));
    assert.equal((await publishedIds(cachePath)).length, 1);
  });
}

test('an origin answering 404 gives the device a JSON 404; nothing is cached', async () => {
  const { cachePath, link } = await setup('missing', { status: 404 });
  const d = await download(link(), { keep: true });
  assert.equal(d.status, 404);
  assert.equal(JSON.parse(d.body!.toString()).error, 'artifact not found at its origin');
  assert.deepEqual(await publishedIds(cachePath), []);
});

// Served uncached by the one origin server, which answers as with the cache off: the Mender
// client will not install an artifact of unknown size, so no device gets a length-less stream.
test("an origin without Content-Length: nothing is cached, each device gets the origin server's 502", async () => {
  const { origin, cachePath, link } = await setup('nolength', { noLength: true });
  const [a, b] = await Promise.all([download(link(), { keep: true }), download(link(), { keep: true })]);
  for (const d of [a, b]) {
    assert.equal(d.status, 502);
    assert.match(String(d.headers['content-type']), /application\/json/);
    assert.equal(JSON.parse(String(d.body)).error, 'artifact origin failed; see the gateway log');
  }
  assert.deepEqual(await publishedIds(cachePath), []);
  assert.ok(origin.requests.length >= 2);
});
