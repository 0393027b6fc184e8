import { describe, it, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { createOriginArtifactServer } from '../../lib/artifacts/serve-from-origin';
import { captureLog } from '../support/capture-log';
import type { ArtifactServer } from '../../lib/artifacts/artifact-server';
import { createArtifactCache, type ArtifactCache } from '../../lib/cache/artifact-cache';
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
  type Download,
  type TestOrigin,
} from './cache-harness';

// Range, If-Range and HEAD answered alike on every serving path: straight from the origin (cache
// off), a cached file, a growing fill, and an artifact the cache cannot hold (served by the same
// origin server). The resumes are those of the real clients (docs/clients.md): Mender 3.4 asks
// `bytes=N-`, 5.1 `bytes=N-(L-1)`; neither sends If-Range, but any HTTP client may.

const SIZE = 400_000;
const body = randomBytes(SIZE);
const ETAG = `"${md5(body)}"`;
const LAST_MODIFIED = 'Tue, 01 Dec 2026 10:00:00 GMT';
const N = 123_456;

interface Case {
  name: string;
  method?: string;
  headers?: Record<string, string>;
  check(d: Download): void;
}

function partial(d: Download, start: number, end: number): void {
  assert.equal(d.status, 206);
  assert.equal(d.headers['content-range'], `bytes ${start}-${end}/${SIZE}`);
  assert.equal(Number(d.headers['content-length']), end - start + 1);
  assert.equal(d.md5, md5(body.subarray(start, end + 1)));
  assert.equal(d.complete, true);
}

function whole(d: Download): void {
  assert.equal(d.status, 200);
  assert.equal(d.headers['content-range'], undefined);
  assert.equal(Number(d.headers['content-length']), SIZE);
  assert.equal(d.md5, md5(body));
  assert.equal(d.complete, true);
}

function validators(d: Download): void {
  assert.equal(d.headers.etag, ETAG);
  assert.equal(d.headers['last-modified'], LAST_MODIFIED);
  assert.equal(d.headers['accept-ranges'], 'bytes');
}

const cases: Case[] = [
  {
    name: 'Mender 3.4 resume (bytes=N-): 206 with the exact Content-Range',
    headers: { range: `bytes=${N}-` },
    check: (d) => partial(d, N, SIZE - 1),
  },
  {
    name: 'Mender 5.1 resume (bytes=N-(L-1)): 206 with the exact Content-Range',
    headers: { range: `bytes=${N}-${SIZE - 1}` },
    check: (d) => partial(d, N, SIZE - 1),
  },
  { name: 'a closed range inside the artifact', headers: { range: 'bytes=1000-1999' }, check: (d) => partial(d, 1000, 1999) },
  { name: 'suffix range bytes=-N: the last N bytes', headers: { range: 'bytes=-1000' }, check: (d) => partial(d, SIZE - 1000, SIZE - 1) },
  {
    name: 'If-Range with the strong ETag: the Range applies',
    headers: { range: `bytes=${N}-`, 'if-range': ETAG },
    check: (d) => partial(d, N, SIZE - 1),
  },
  {
    name: 'If-Range with the Last-Modified date: the Range applies',
    headers: { range: `bytes=${N}-`, 'if-range': LAST_MODIFIED },
    check: (d) => partial(d, N, SIZE - 1),
  },
  { name: 'If-Range with another ETag: the whole artifact, 200', headers: { range: `bytes=${N}-`, 'if-range': '"stale"' }, check: whole },
  { name: 'If-Range with a weak ETag: the whole artifact, 200', headers: { range: `bytes=${N}-`, 'if-range': `W/${ETAG}` }, check: whole },
  {
    name: 'If-Range with another date: the whole artifact, 200',
    headers: { range: `bytes=${N}-`, 'if-range': 'Mon, 30 Nov 2026 10:00:00 GMT' },
    check: whole,
  },
  {
    name: 'unsatisfiable range: 416 with Content-Range bytes */size',
    headers: { range: `bytes=${SIZE}-` },
    check: (d) => {
      assert.equal(d.status, 416);
      assert.equal(d.headers['content-range'], `bytes */${SIZE}`);
      assert.match(String(d.headers['content-type']), /application\/json/);
    },
  },
  {
    name: 'unsatisfiable range under a failing If-Range: the whole artifact',
    headers: { range: `bytes=${SIZE}-`, 'if-range': '"stale"' },
    check: whole,
  },
  {
    name: 'HEAD: 200, the full Content-Length, validators, no body',
    method: 'HEAD',
    check: (d) => {
      assert.equal(d.status, 200);
      assert.equal(Number(d.headers['content-length']), SIZE);
      assert.equal(d.length, 0);
      validators(d);
    },
  },
  {
    name: 'HEAD with a resume Range: the 206 headers, no body',
    method: 'HEAD',
    headers: { range: `bytes=${N}-` },
    check: (d) => {
      assert.equal(d.status, 206);
      assert.equal(d.headers['content-range'], `bytes ${N}-${SIZE - 1}/${SIZE}`);
      assert.equal(Number(d.headers['content-length']), SIZE - N);
      assert.equal(d.length, 0);
    },
  },
  {
    name: 'GET: 200, the whole artifact with ETag and Last-Modified',
    check: (d) => {
      whole(d);
      validators(d);
    },
  },
];

/** Every case at once against one front; each answer checked. */
async function runCases(url: string): Promise<void> {
  const answers = await Promise.all(cases.map((c) => download(url, { method: c.method, headers: c.headers })));
  cases.forEach((c, i) => {
    try {
      c.check(answers[i]!);
      if (answers[i]!.status !== 416) validators(answers[i]!);
    } catch (err) {
      (err as Error).message = `${c.name}: ${(err as Error).message}`;
      throw err;
    }
  });
}

interface Setup {
  origin: TestOrigin;
  server: ArtifactServer;
  front: Awaited<ReturnType<typeof startFront>>;
  dir?: string;
}
const setups: Setup[] = [];
after(async () => {
  for (const s of setups) {
    await s.front.close();
    await s.server.close?.();
    await s.origin.close();
    if (s.dir) await fsp.rm(s.dir, { recursive: true, force: true });
  }
});

async function serving(server: ArtifactServer, origin: TestOrigin, dir?: string): Promise<Setup> {
  const setup = { origin, server, front: await startFront(server), dir };
  setups.push(setup);
  return setup;
}

async function withCache(extra: Parameters<typeof cacheConfig>[1], throttle = 0): Promise<Setup & { cache: ArtifactCache; dir: string }> {
  const origin = await startOrigin(body, { lastModified: LAST_MODIFIED, throttle });
  const dir = await tempDir('artifact-ranges-');
  const cache = await createArtifactCache({ config: cacheConfig(dir, extra), log: quietLog() });
  return { ...(await serving(cache, origin, dir)), cache, dir };
}

describe('every serving path answers Range, If-Range and HEAD alike', () => {
  it("from the origin (cache off): If-Range is decided on the origin's validators, the whole asked again on a mismatch", async () => {
    const origin = await startOrigin(body, { lastModified: LAST_MODIFIED });
    const { front } = await serving(createOriginArtifactServer(), origin);
    await runCases(front.url(origin.url('off.mender')));
    // The failing If-Range cases first asked for the range, then for the whole artifact.
    assert.ok(origin.requests.some((r) => r.range === undefined));
    // HEAD goes to a presigned URL as GET bytes=0-0 (signed for GET only).
    assert.ok(origin.requests.some((r) => r.range === 'bytes=0-0'));
  });

  it('from a cached file: the validators kept with the entry', async () => {
    const { origin, front, dir } = await withCache({});
    const link = front.url(origin.url('cached.mender'));
    whole(await download(link));
    await waitFor(async () => (await publishedIds(dir)).length === 1, 10_000, 'the entry to be published');
    const asked = origin.requests.length;
    await runCases(link);
    assert.equal(origin.requests.length, asked, 'served from disk: the origin was not asked again');
  });

  it("from a growing fill: the origin's validators while the bytes land", async () => {
    // ~0.8 s for the fill: every case is asked while it grows.
    const { origin, front, cache, dir } = await withCache({}, 500_000);
    const link = front.url(origin.url('growing.mender'));
    const first = download(link);
    await waitFor(() => [...cache.fillsInProgress()].some((p) => p.state === 'growing'), 10_000, 'the fill to grow');
    await runCases(link);
    whole(await first);
    assert.equal(origin.requests.length, 1, 'one origin download for every device');
    assert.equal((await publishedIds(dir)).length, 1);
  });

  it('uncached (no room in the cache): through the origin server, as with the cache off', async () => {
    const { origin, front, dir } = await withCache({ MaxSize: 1000 });
    await runCases(front.url(origin.url('too-big.mender')));
    assert.deepEqual(await publishedIds(dir), []);
  });
});

describe('a cached entry keeps its validators across a restart', () => {
  let dir: string;
  let origin: TestOrigin;
  before(async () => {
    origin = await startOrigin(body, { lastModified: LAST_MODIFIED });
    dir = await tempDir('artifact-ranges-restart-');
  });
  after(async () => {
    await origin.close();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('a new process serves If-Range resumes from the sidecar', async () => {
    const first = await createArtifactCache({ config: cacheConfig(dir), log: quietLog() });
    const one = await startFront(first);
    whole(await download(one.url(origin.url('kept.mender'))));
    await waitFor(async () => (await publishedIds(dir)).length === 1, 10_000, 'the entry to be published');
    await one.close();
    await first.close();

    const second = await createArtifactCache({ config: cacheConfig(dir), log: quietLog() });
    const two = await startFront(second);
    try {
      const d = await download(two.url(origin.url('kept.mender')), { headers: { range: `bytes=${N}-`, 'if-range': LAST_MODIFIED } });
      partial(d, N, SIZE - 1);
      validators(d);
      assert.equal(origin.requests.length, 1);
    } finally {
      await two.close();
      await second.close();
    }
  });
});

describe('errors are answered by the route, cache on or off', () => {
  for (const cacheOn of [false, true]) {
    it(`a device that leaves mid-download is logged as a 499, not an error (cache ${cacheOn ? 'on' : 'off'})`, async () => {
      const origin = await startOrigin(body, { lastModified: LAST_MODIFIED, throttle: 400_000 });
      const dir = await tempDir('artifact-ranges-left-');
      const server = cacheOn ? await createArtifactCache({ config: cacheConfig(dir), log: quietLog() }) : createOriginArtifactServer();
      const { log, lines } = captureLog();
      const front = await startFront(server, log);
      try {
        const d = await download(front.url(origin.url('left.mender')), { abortAfter: 50_000 });
        assert.equal(d.complete, false);
        await waitFor(() => lines.some((l) => l.includes('device left during the artifact download')), 5_000, 'the 499 line');
        const left = lines.find((l) => l.includes('device left'))!;
        assert.match(left, /level=debug/);
        assert.match(left, /status=499/);
        assert.equal(lines.filter((l) => /level=error/.test(l)).length, 0, lines.join(''));
      } finally {
        await front.close();
        await server.close?.();
        await origin.close();
        await fsp.rm(dir, { recursive: true, force: true });
      }
    });
  }
});
