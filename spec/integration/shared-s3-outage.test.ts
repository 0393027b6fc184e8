import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import * as path from 'node:path';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import { createArtifactCache, type CacheTuning } from '../../lib/cache/artifact-cache';
import type { Logger } from '../../lib/observe/log';
import { cacheKey, entryId } from '../../lib/cache/store/cache-key';
import { captureLog } from '../support/capture-log';
import { cacheConfig, download, md5, startFront, startOrigin, tempDir, waitFor, type TestOrigin } from './cache-harness';

// ArtifactsCache.S3 through an outage and back, in process: the bucket sits behind a
// TCP relay the test turns off and on. While it is off, fills go to the origin and the local
// cache (one warn line for the whole outage); once the retry delay has passed, the next fill
// uses the bucket again and shares what it fetched. The copy to the bucket streams while the
// fill runs; a fill that fails leaves nothing in the bucket.

const SIZE = 512 * 1024;
let dir: string;
let body: Buffer;
let origin: TestOrigin;
let bucket: S3Store;
let relayUp = false;
let relayPort = 0;
const relaySockets = new Set<net.Socket>();
const relay = net.createServer((client) => {
  if (!relayUp) return client.destroy();
  const up = net.connect(bucket.port, '127.0.0.1');
  for (const s of [client, up]) {
    relaySockets.add(s);
    s.on('close', () => relaySockets.delete(s)).on('error', () => undefined);
  }
  client.pipe(up).pipe(client);
});

before(async () => {
  dir = await tempDir('shared-s3-outage-');
  body = randomBytes(SIZE);
  origin = await startOrigin(body);
  bucket = await startS3Store();
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  relayPort = (relay.address() as net.AddressInfo).port;
});

after(async () => {
  for (const s of relaySockets) s.destroy();
  await new Promise((r) => relay.close(r));
  await origin.close();
  await bucket.close();
  await fsp.rm(dir, { recursive: true, force: true });
});

function s3Config(cachePath: string) {
  return cacheConfig(cachePath, {
    S3: {
      Enabled: true,
      Endpoint: `http://127.0.0.1:${relayPort}`,
      Bucket: bucket.bucket,
      Region: bucket.region,
      AccessKeyID: bucket.accessKey,
      SecretAccessKey: bucket.secretKey,
      Prefix: 'c/',
    },
  });
}

/** An in-process gateway cache on its own directory and the shared bucket, closed after `run`. */
async function withCache(
  name: string,
  opts: { log?: Logger; tuning?: CacheTuning },
  run: (link: (origin: URL) => string) => Promise<void>,
): Promise<void> {
  const cache = await createArtifactCache({
    config: s3Config(path.join(dir, name)),
    log: opts.log ?? captureLog('info').log,
    tuning: opts.tuning,
  });
  const front = await startFront(cache);
  try {
    await run((o) => front.url(o));
  } finally {
    await cache.close();
    await front.close();
  }
}

test('bucket down: origin fills, one warn line; bucket back after the retry delay: fills are shared again, and another gateway uses them', async () => {
  const { log, text } = captureLog('info');
  await withCache('one', { log, tuning: { shared: { retryMs: 400, timeoutMs: 2_000 } } }, async (link) => {
    for (const name of ['a.mender', 'b.mender']) {
      const got = await Promise.all([1, 2, 3].map(() => download(link(origin.url(name)))));
      for (const d of got) assert.equal(d.md5, md5(body));
    }
    assert.equal(origin.fullDownloads, 2);
    assert.equal([...text().matchAll(/msg="shared cache bucket unreachable/g)].length, 1, text());

    relayUp = true;
    await new Promise((r) => setTimeout(r, 450));
    const c = await download(link(origin.url('c.mender')));
    assert.equal(c.md5, md5(body));
    assert.equal(origin.fullDownloads, 3);
    await waitFor(() => /msg="artifact shared in the bucket"/.test(text()), 10_000, 'the upload of c.mender').catch((err: Error) =>
      assert.fail(`${err.message}\n${text()}`),
    );
    assert.match(text(), /msg="shared cache bucket reachable again"/);
  });

  // Another gateway (its own cache dir): c.mender from the bucket; a.mender never reached it.
  await withCache('two', {}, async (link) => {
    const c = await download(link(origin.url('c.mender')));
    assert.equal(c.md5, md5(body));
    assert.equal(origin.fullDownloads, 3, 'c.mender came from the bucket');
    const a = await download(link(origin.url('a.mender')));
    assert.equal(a.md5, md5(body));
    assert.equal(origin.fullDownloads, 4, 'a.mender was fetched during the outage, so only the origin has it');
  });
});

test('an origin fill that fails for good publishes nothing in the bucket and frees the lock; the next fill shares a good copy', async () => {
  relayUp = true;
  const flaky = await startOrigin(body, { truncateAt: SIZE / 2 });
  const { log, text } = captureLog('info');
  const url = flaky.url('half.mender');
  const id = entryId(cacheKey(url));
  const exists = (key: string) =>
    bucket.client.statObject(bucket.bucket, key).then(
      () => true,
      () => false,
    );
  await withCache('broken', { log, tuning: { retry: { retries: 1, backoffMs: 10, maxBackoffMs: 20 } } }, async (link) => {
    const d = await download(link(url));
    assert.ok(!d.complete || d.status >= 500, `a broken download, got ${d.status} with ${d.length} bytes`);
    await waitFor(async () => !(await exists(`c/v1/locks/${id}`)), 5_000, 'the lock to go');
    // The sidecar is the bucket's commit point. (s3rver keeps the cut PUT's partial bytes,
    // where S3 stores nothing; without a sidecar no gateway ever reads them.)
    assert.equal(await exists(`c/v1/objects/${id}.json`), false);
    assert.doesNotMatch(text(), /shared cache bucket unreachable|artifact shared in the bucket/);

    flaky.behaviour.truncateAt = undefined;
    const again = await download(link(url));
    assert.equal(again.md5, md5(body));
    await waitFor(() => exists(`c/v1/objects/${id}.json`), 5_000, 'the sidecar');
    const st = await bucket.client.statObject(bucket.bucket, `c/v1/objects/${id}`);
    assert.equal(st.size, SIZE);
  });
  await withCache('broken-2', {}, async (link) => {
    const before = flaky.fullDownloads;
    const d = await download(link(url));
    assert.equal(d.md5, md5(body));
    assert.equal(flaky.fullDownloads, before, 'served from the bucket copy');
  }).finally(() => flaky.close());
});
