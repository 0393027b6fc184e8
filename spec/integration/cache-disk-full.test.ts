import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import http from 'node:http';
import * as path from 'node:path';
import { createArtifactCache, type ArtifactCache } from '../../lib/cache/artifact-cache';
import { cacheKey, entryId } from '../../lib/cache/store/cache-key';
import { cacheConfig, download, md5, publishedIds, quietLog, startFront, startOrigin, tempDir, type TestOrigin } from './cache-harness';

// A cache on a small filesystem made by the test (a 24 MiB tmpfs; the tests run as root):
// eviction removes the least recently used idle entry and keeps the ones being read; when
// nothing can be evicted the artifact is streamed uncached and the devices never notice.

const MiB = 1024 * 1024;
const SIZE = 10 * MiB;
let dir: string;
let mountPoint: string;
let origin: TestOrigin;
let cache: ArtifactCache;
let front: Awaited<ReturnType<typeof startFront>>;
const body = randomBytes(SIZE);

before(async () => {
  dir = await tempDir('cache-full-');
  mountPoint = path.join(dir, 'small');
  await fsp.mkdir(mountPoint);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m,mode=0700', 'tmpfs', mountPoint]);
  origin = await startOrigin(body);
  cache = await createArtifactCache({ config: cacheConfig(mountPoint), log: quietLog() });
  front = await startFront(cache);
});

after(async () => {
  await cache?.close();
  await front?.close();
  await origin?.close();
  execFileSync('umount', ['-l', mountPoint]);
  await fsp.rm(dir, { recursive: true, force: true });
});

/** A device that reads the first bytes and then holds the download open until released. */
function heldDownload(url: string): Promise<{ release(): Promise<{ md5: string; length: number }> }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        const hash = createHash('md5');
        let length = 0;
        res.once('data', () => res.pause());
        res.on('data', (c: Buffer) => {
          hash.update(c);
          length += c.length;
        });
        const done = new Promise<{ md5: string; length: number }>((r) => res.on('end', () => r({ md5: hash.digest('hex'), length })));
        setTimeout(
          () =>
            resolve({
              release: () => {
                res.resume();
                return done;
              },
            }),
          200,
        );
      })
      .on('error', reject);
  });
}

const idOf = (name: string) => entryId(cacheKey(origin.url(name)));
const link = (name: string) => front.url(origin.url(name));

test('a full disk evicts the least recently used idle entry, never one being read, and streams uncached when nothing can go', async () => {
  // A, then B: 20 MiB of 24.
  assert.equal((await download(link('a'))).md5, md5(body));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal((await download(link('b'))).md5, md5(body));
  assert.deepEqual((await publishedIds(mountPoint)).sort(), [idOf('a'), idOf('b')].sort());

  // A is older than B, but a device is reading A: C evicts B.
  await new Promise((r) => setTimeout(r, 20));
  const readerA = await heldDownload(link('a'));
  const c = await download(link('c'));
  assert.equal(c.md5, md5(body));
  assert.deepEqual((await publishedIds(mountPoint)).sort(), [idOf('a'), idOf('c')].sort());

  // Both cached entries in use: D cannot fit, so each device gets it straight from the origin.
  const readerC = await heldDownload(link('c'));
  const requestsBefore = origin.requests.length;
  const [d1, d2] = await Promise.all([download(link('d')), download(link('d'), { range: 'bytes=1000-', keep: true })]);
  assert.equal(d1.status, 200);
  assert.equal(d1.md5, md5(body));
  assert.equal(d2.status, 206);
  assert.equal(d2.headers['content-range'], `bytes 1000-${SIZE - 1}/${SIZE}`);
  assert.ok(d2.body!.equals(body.subarray(1000)));
  assert.ok(origin.requests.length - requestsBefore >= 2);
  assert.deepEqual((await publishedIds(mountPoint)).sort(), [idOf('a'), idOf('c')].sort());
  assert.deepEqual(await fsp.readdir(path.join(mountPoint, 'v1', 'tmp')), []);

  // The held devices finish with every byte right.
  assert.deepEqual(await readerA.release(), { md5: md5(body), length: SIZE });
  assert.deepEqual(await readerC.release(), { md5: md5(body), length: SIZE });

  // Nothing is being read any more: D now evicts the least recently used entry and is cached.
  const d3 = await download(link('d'));
  assert.equal(d3.md5, md5(body));
  assert.ok((await publishedIds(mountPoint)).includes(idOf('d')));
  assert.equal((await publishedIds(mountPoint)).length, 2);
});

test('MaxSize caps the cache below the free space', async () => {
  const capped = await createArtifactCache({ config: cacheConfig(path.join(dir, 'capped'), { MaxSize: 15 * MiB }), log: quietLog() });
  const cappedFront = await startFront(capped);
  try {
    const url = (n: string) => cappedFront.url(origin.url(n));
    assert.equal((await download(url('m1'))).md5, md5(body));
    assert.equal((await download(url('m2'))).md5, md5(body));
    assert.deepEqual(await publishedIds(path.join(dir, 'capped')), [idOf('m2')]);
  } finally {
    await capped.close();
    await cappedFront.close();
  }
});

test('the disk fills up during a fill (ENOSPC): nothing is published, the device sees a broken download, later devices are served uncached, then cached once there is room', async () => {
  const small = path.join(dir, 'enospc');
  await fsp.mkdir(small);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m,mode=0700', 'tmpfs', small]);
  const slow = await startOrigin(body, { throttle: 4 * MiB });
  let now = 0;
  const c2 = await createArtifactCache({ config: cacheConfig(small), log: quietLog(), tuning: { clock: () => now } });
  const f2 = await startFront(c2);
  try {
    const url = () => f2.url(slow.url('e'));
    const broken = download(url());
    // Someone else takes the space while the fill runs.
    await new Promise((r) => setTimeout(r, 400));
    await fsp.writeFile(path.join(small, 'filler'), Buffer.alloc(10 * MiB));
    const first = await broken;
    assert.equal(first.status, 200);
    assert.ok(!first.complete, 'a fill that hit ENOSPC must not end the download cleanly');
    assert.deepEqual(await publishedIds(small), []);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(await fsp.readdir(path.join(small, 'v1', 'tmp')), []);
    assert.equal(c2.knownTooBig, 1, 'its size is remembered');

    slow.behaviour.throttle = 0;
    const uncached = await download(url());
    assert.equal(uncached.md5, md5(body));
    assert.deepEqual(await publishedIds(small), []);
    assert.equal(c2.knownTooBig, 1);
    now += 24 * 3600_000;
    assert.equal(c2.knownTooBig, 0, 'a day on, the size is forgotten: the next device tries a fill again');

    await fsp.rm(path.join(small, 'filler'));
    const cached = await download(url());
    assert.equal(cached.md5, md5(body));
    assert.equal((await publishedIds(small)).length, 1);
  } finally {
    await c2.close();
    await f2.close();
    await slow.close();
    execFileSync('umount', ['-l', small]);
  }
});

test('two processes on one cache path: eviction and MaxSize see what the other published, and leave room for its running fill', async () => {
  // Two caches in this process stand for two workers: each has its own in-memory index.
  const shared = path.join(dir, 'shared');
  await fsp.mkdir(shared);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m,mode=0700', 'tmpfs', shared]);
  const slow = await startOrigin(body, { throttle: 4 * MiB });
  const a = await createArtifactCache({ config: cacheConfig(shared), log: quietLog() });
  const b = await createArtifactCache({ config: cacheConfig(shared), log: quietLog() });
  const [fa, fb] = [await startFront(a), await startFront(b)];
  try {
    const id = (n: string) => entryId(cacheKey(slow.url(n)));
    slow.behaviour.throttle = 0;
    assert.equal((await download(fa.url(slow.url('q')))).md5, md5(body)); // 10 of 24 MiB, published by A
    slow.behaviour.throttle = 4 * MiB;
    // A fills r1 slowly; B's r2 needs its 10 MiB plus what r1 has still to write: only evicting
    // q (which B never served) makes room for both.
    const r1 = download(fa.url(slow.url('r1')));
    await new Promise((r) => setTimeout(r, 500));
    const r2 = download(fb.url(slow.url('r2')));
    const [d1, d2] = await Promise.all([r1, r2]);
    assert.ok(d1.complete && d2.complete, 'neither fill ran out of space');
    assert.equal(d1.md5, md5(body));
    assert.equal(d2.md5, md5(body));
    assert.deepEqual((await publishedIds(shared)).sort(), [id('r1'), id('r2')].sort());

    // MaxSize counts the other's entries too: with a 25 MiB cap, B caching m evicts A's oldest.
    await a.close();
    await b.close();
    const capped = [cacheConfig(shared, { MaxSize: 25 * MiB }), cacheConfig(shared, { MaxSize: 25 * MiB })];
    const [ca, cb] = [
      await createArtifactCache({ config: capped[0]!, log: quietLog() }),
      await createArtifactCache({ config: capped[1]!, log: quietLog() }),
    ];
    const [fca, fcb] = [await startFront(ca), await startFront(cb)];
    try {
      slow.behaviour.throttle = 0;
      await fsp.utimes(path.join(shared, 'v1', 'objects', id('r1')), new Date(1000), new Date(1000));
      // B restarted before A published s: only a fresh look at the disk tells B about it.
      await fsp.rm(path.join(shared, 'v1', 'objects', id('r2')));
      await fsp.rm(path.join(shared, 'v1', 'objects', `${id('r2')}.json`));
      assert.equal((await download(fca.url(slow.url('s')))).md5, md5(body));
      assert.equal((await download(fcb.url(slow.url('m')))).md5, md5(body));
      assert.deepEqual((await publishedIds(shared)).sort(), [id('s'), id('m')].sort(), 'the oldest entry (r1) went');
    } finally {
      await ca.close();
      await cb.close();
      await fca.close();
      await fcb.close();
    }
  } finally {
    await a.close();
    await b.close();
    await fa.close();
    await fb.close();
    await slow.close();
    execFileSync('umount', ['-l', shared]);
  }
});
