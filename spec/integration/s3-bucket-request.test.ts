import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { setImmediate } from 'node:timers/promises';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import { Bucket } from '../../lib/cache/shared/s3-bucket';
import { BucketLocks } from '../../lib/cache/shared/s3-bucket-lock';
import type { Presigner } from '../../lib/cache/shared/s3-presigner';
import { BucketUnreachable, bucketRequest } from '../../lib/cache/shared/s3-request';
import { closeServer, listenOnFreePort } from '../support/listen';

// A keep-alive connection to the bucket that the server closes just as the gateway reuses it:
// the request is reset before any answer. Under load this made a gateway take the whole bucket
// for unreachable (30 s of origin fills) in CI. A hop in front of the real S3 store resets
// chosen requests: before forwarding them (the usual race) or after the store answered (the
// request landed, the answer was lost).

type Fault = 'reset-before' | 'reset-after';

describe('bucket requests on a reset keep-alive connection', () => {
  let store: S3Store;
  let hop: http.Server;
  let hopPort = 0;
  /** What the hop saw: method, path, and whether the request came on an already used connection. */
  const seen: { method: string; path: string; reused: boolean }[] = [];
  /** The fault for the next request that arrives on a used connection (one shot). */
  let nextFault: Fault | null = null;
  const agent = new http.Agent({ keepAlive: true });

  before(async () => {
    store = await startS3Store();
    const used = new WeakSet<Socket>();
    hop = http.createServer((req, res) => {
      const reused = used.has(req.socket);
      used.add(req.socket);
      seen.push({ method: req.method ?? '', path: (req.url ?? '').split('?')[0], reused });
      const fault = reused ? nextFault : null;
      if (fault) nextFault = null;
      if (fault === 'reset-before') return req.socket.destroy();
      // The signature covers the store's host: forward with it.
      const up = http.request(
        {
          host: store.host,
          port: store.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: `${store.host}:${store.port}` },
          agent,
        },
        (answer) => {
          if (fault === 'reset-after') {
            answer.resume();
            answer.on('end', () => req.socket.destroy());
            return;
          }
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      req.pipe(up);
    });
    hopPort = await listenOnFreePort(hop);
  });
  after(async () => {
    agent.destroy();
    await closeServer(hop);
    await store?.close();
  });

  /** Presigned for the store, sent to the hop. */
  const presigner: Presigner = {
    where: 'hop',
    url: async (method, key, expiry) => {
      const url = new URL(await store.client.presignedUrl(method, store.bucket, key, expiry));
      url.port = String(hopPort);
      return url.toString();
    },
  };
  /** Make a connection to the hop and let it go back to the agent's pool, ready to be reused. */
  const warm = async (): Promise<void> => {
    await send('GET', 'r/warm');
    await setImmediate();
    seen.length = 0;
  };
  const send = async (method: 'GET' | 'PUT', key: string, body?: Buffer | { stream: Readable; length: number }) =>
    bucketRequest(await presigner.url(method, key, 60), { method, timeoutMs: 5_000, ...(body ? { body } : {}) });

  it('sends a GET or a PUT with a buffer again on a new connection, once', async () => {
    assert.equal((await send('PUT', 'r/a', Buffer.from('first'))).status, 200);
    await warm();
    nextFault = 'reset-before';
    const got = await send('GET', 'r/a');
    assert.equal(got.status, 200);
    assert.equal(got.text, 'first');
    assert.deepEqual(
      seen.map((s) => `${s.method} ${s.reused}`),
      ['GET true', 'GET false'],
    );

    await warm(); // the retry's own connection was closed after it
    nextFault = 'reset-before';
    assert.equal((await send('PUT', 'r/a', Buffer.from('second'))).status, 200);
    assert.deepEqual(
      seen.map((s) => `${s.method} ${s.reused}`),
      ['PUT true', 'PUT false'],
    );
    assert.equal((await send('GET', 'r/a')).text, 'second');
  });

  it('does not send a streamed body again: the bucket is unreachable for that request', async () => {
    await warm();
    nextFault = 'reset-before';
    await assert.rejects(send('PUT', 'r/b', { stream: Readable.from([Buffer.from('streamed')]), length: 8 }), (err: Error) => {
      assert.ok(err instanceof BucketUnreachable, String(err));
      assert.match(err.message, /^bucket unreachable: /);
      return true;
    });
    assert.deepEqual(
      seen.map((s) => s.method),
      ['PUT'],
    );
  });

  it('does not retry a reset on a new connection', async () => {
    seen.length = 0;
    const fresh = http.createServer((req) => req.socket.destroy());
    const port = await listenOnFreePort(fresh);
    try {
      await assert.rejects(bucketRequest(`http://127.0.0.1:${port}/x`, { method: 'GET', timeoutMs: 5_000 }), BucketUnreachable);
    } finally {
      await closeServer(fresh);
    }
  });

  it('a lock PUT that landed but lost its answer: sent again, it finds its own record and holds the lock', async () => {
    const bucket = new Bucket(presigner, 'p/', 5_000);
    const locks = new BucketLocks(bucket, { leaseMs: 30_000, settleMs: 100 }, () => assert.fail('the store honours If-None-Match'));
    assert.equal(await locks.conditionalWrites(), true);
    await warm();
    nextFault = 'reset-after';
    const lock = await locks.tryTake('entry-1');
    assert.notEqual(typeof lock, 'string', `took ${String(lock)}`);
    assert.deepEqual(
      seen.map((s) => `${s.method} ${s.path.replace(/^\/[^/]+\//, '')} ${s.reused}`),
      [
        'PUT p/v1/locks/entry-1 true', // landed, answer lost
        'PUT p/v1/locks/entry-1 false', // 412: the key exists
        'GET p/v1/locks/entry-1 false', // our own owner in it
      ],
    );
    // Another gateway finds it held; once released, it is free.
    const other = new BucketLocks(bucket, { leaseMs: 30_000, settleMs: 100 }, () => undefined);
    assert.equal(await other.tryTake('entry-1'), 'held');
    await (lock as Exclude<typeof lock, string>).release();
    const again = await other.tryTake('entry-1');
    assert.notEqual(typeof again, 'string');
    await (again as Exclude<typeof again, string>).release();
  });
});
