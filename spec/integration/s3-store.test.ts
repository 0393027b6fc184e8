import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';

interface Got {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  startedAt: number;
  endedAt: number;
}

function get(url: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const startedAt = Date.now();
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), startedAt, endedAt: Date.now() }),
      );
      res.on('error', reject);
    });
    req.setTimeout(20_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Flip one hex digit of the signature. */
function tamper(url: string): string {
  return url.replace(/(X-Amz-Signature=[0-9a-f]*)([0-9a-f])$/, (_m, head: string, last: string) => head + (last === '0' ? '1' : '0'));
}

describe('s3 store (s3rver behind the counting front)', () => {
  let store: S3Store;
  let dir: string;
  const content = randomBytes(300_000);
  const key = 'artifacts/abc 1.mender';

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 's3-store-test-'));
    await writeFile(join(dir, 'a.bin'), content);
    store = await startS3Store();
    await store.putObject(key, join(dir, 'a.bin'));
  });
  after(async () => {
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves a presigned GET with 200, the exact bytes and a Content-Length', async () => {
    const url = await store.presignGet(key, 600);
    assert.match(url, /X-Amz-Algorithm=AWS4-HMAC-SHA256/);
    const got = await get(url);
    assert.equal(got.status, 200);
    assert.equal(got.headers['content-length'], String(content.length));
    assert.equal(createHash('sha256').update(got.body).digest('hex'), createHash('sha256').update(content).digest('hex'));
  });

  it('rejects a tampered signature with 403 SignatureDoesNotMatch', async () => {
    const got = await get(tamper(await store.presignGet(key, 600)));
    assert.equal(got.status, 403);
    assert.match(got.body.toString(), /SignatureDoesNotMatch/);
  });

  it('rejects a link signed for another object', async () => {
    const url = await store.presignGet(key, 600);
    const other = url.replace('abc%201.mender', 'abc%202.mender');
    assert.notEqual(other, url);
    assert.equal((await get(other)).status, 403);
  });

  it('refuses an expired link with 403', async () => {
    const url = await store.client.presignedGetObject(store.bucket, key, 60, {}, new Date(Date.now() - 120_000));
    const got = await get(url);
    assert.equal(got.status, 403);
    assert.match(got.body.toString(), /expired/);
  });

  it('refuses anonymous access', async () => {
    const got = await get(`${store.endpoint}/${store.bucket}/artifacts/abc%201.mender`);
    assert.equal(got.status, 403);
  });

  it('answers Range bytes=N- and bytes=A-B with 206 and the right Content-Range', async () => {
    const url = await store.presignGet(key, 600);
    const open = await get(url, { headers: { Range: 'bytes=250000-' } });
    assert.equal(open.status, 206);
    assert.equal(open.headers['content-range'], `bytes 250000-${content.length - 1}/${content.length}`);
    assert.deepEqual(open.body, content.subarray(250000));
    const closed = await get(url, { headers: { Range: 'bytes=100-199' } });
    assert.equal(closed.status, 206);
    assert.equal(closed.headers['content-range'], `bytes 100-199/${content.length}`);
    assert.deepEqual(closed.body, content.subarray(100, 200));
  });

  it('answers a suffix range bytes=-N with the last N bytes', async () => {
    const url = await store.presignGet(key, 600);
    const got = await get(url, { headers: { Range: 'bytes=-500' } });
    assert.equal(got.status, 206);
    assert.equal(got.headers['content-range'], `bytes ${content.length - 500}-${content.length - 1}/${content.length}`);
    assert.deepEqual(got.body, content.subarray(content.length - 500));
    const zero = await get(url, { headers: { Range: 'bytes=-0' } });
    assert.equal(zero.status, 416);
  });

  it('answers a range past the end with 416 and ignores multi-ranges (200, whole object)', async () => {
    const url = await store.presignGet(key, 600);
    assert.equal((await get(url, { headers: { Range: `bytes=${content.length}-` } })).status, 416);
    const multi = await get(url, { headers: { Range: 'bytes=0-9,20-29' } });
    assert.equal(multi.status, 200);
    assert.equal(multi.body.length, content.length);
  });

  it('answers HEAD on a HEAD-signed link with the length and no body; a GET-signed link is not valid for HEAD', async () => {
    const headUrl = await store.client.presignedUrl('HEAD', store.bucket, key, 600);
    const head = await get(headUrl, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(content.length));
    assert.equal(head.body.length, 0);
    const wrongMethod = await get(await store.presignGet(key, 600), { method: 'HEAD' });
    assert.equal(wrongMethod.status, 403);
  });

  it('counts requests, bytes and full downloads per object, and logs requests without their query', async () => {
    const countKey = 'count/me.bin';
    await store.putObject(countKey, join(dir, 'a.bin'));
    const url = await store.presignGet(countKey, 600);
    await get(url);
    await get(url, { headers: { Range: 'bytes=1000-' } });
    await get(tamper(url));
    const stats = store.stats(countKey);
    assert.equal(stats.requests, 3);
    assert.equal(stats.fullDownloads, 1);
    assert.equal(stats.bytesServed, content.length + content.length - 1000);
    assert.ok(store.totalBytesServed() >= stats.bytesServed);
    const logged = store.requestLog.filter((e) => e.path === `/${store.bucket}/count/me.bin`);
    assert.deepEqual(
      logged.map((e) => [e.method, e.status, e.range]),
      [
        ['PUT', 200, undefined],
        ['GET', 200, undefined],
        ['GET', 206, 'bytes=1000-'],
        ['GET', 403, undefined],
      ],
    );
    assert.ok(logged.every((e) => !e.path.includes('?') && e.remoteAddress !== ''));
  });

  it('throttles each response, so two downloads at the same time overlap', async () => {
    const url = await store.presignGet(key, 600);
    const seconds = 1; // each download alone; a cap shared by both would need twice that
    store.setThrottle(content.length / seconds);
    try {
      const [a, b] = await Promise.all([get(url), get(url)]);
      assert.equal(a.body.length, content.length);
      assert.equal(b.body.length, content.length);
      for (const d of [a, b])
        assert.ok(d.endedAt - d.startedAt >= 900 * seconds, `a throttled download took ${d.endedAt - d.startedAt} ms`);
      assert.ok(a.startedAt < b.endedAt && b.startedAt < a.endedAt, 'the two downloads overlap in time');
      // Per response, not shared: both finish well before the 2 s a shared cap would need
      // (the margin leaves room for a busy machine).
      const total = Math.max(a.endedAt, b.endedAt) - Math.min(a.startedAt, b.startedAt);
      assert.ok(total < 1700 * seconds, `both downloads took ${total} ms together`);
    } finally {
      store.setThrottle(0);
    }
  });

  it('keeps racing writes whole: PUTs and DELETEs of keys in one directory never crash it, racing PUTs of one key leave one of the bodies', async () => {
    const send = async (method: 'PUT' | 'DELETE', k: string, body?: Buffer): Promise<number> => {
      const url = await store.client.presignedUrl(method, store.bucket, k, 600);
      return new Promise((resolve, reject) => {
        const req = http.request(url, { method, agent: false, headers: body ? { 'Content-Length': body.length } : {} }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end(body);
      });
    };
    // s3rver removes a directory when its last object is deleted; a PUT in between lost its directory.
    for (let round = 0; round < 30; round++) {
      const keys = Array.from({ length: 20 }, (_, i) => `locks/race-${round}-${i}`);
      const statuses = await Promise.all(keys.flatMap((k) => [send('PUT', k, randomBytes(200)), send('DELETE', k)]));
      assert.deepEqual([...new Set(statuses)].sort(), [200, 204], `round ${round}: ${statuses.join(' ')}`);
    }
    const bodies = Array.from({ length: 4 }, () => randomBytes(256 * 1024));
    const k = 'locks/one-key';
    assert.deepEqual(await Promise.all(bodies.map((b) => send('PUT', k, b))), [200, 200, 200, 200]);
    const got = await get(await store.presignGet(k, 600));
    assert.equal(got.status, 200);
    const digest = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
    assert.ok(bodies.map(digest).includes(digest(got.body)), `a whole body of one of the writes (got ${got.body.length} bytes)`);
  });
});
