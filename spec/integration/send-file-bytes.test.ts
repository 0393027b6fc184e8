// The cache's serve loop over plain HTTP and over TLS: every byte arrives in order; over TLS
// each write is a single 64 KiB slab (Node's TLS socket would copy several buffers into a new
// one), while plain HTTP, one download alone, gets the large adaptive reads.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KiB, ReadSizer, SLAB } from '../../lib/cache/read-size';
import { completeFile, sendFileBytes } from '../../lib/cache/send-file-bytes';
import { closeServer, listenOnFreePort } from '../support/listen';
import { makeTlsMaterial } from '../support/tls-material';

const SIZE = 3 * 1024 * KiB + 123; // several large reads and a short last one

describe('sendFileBytes over HTTP and HTTPS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-send-'));
  const file = join(dir, 'artifact.bin');
  const data = randomBytes(SIZE);
  mkdirSync(join(dir, 'tls'));
  const tls = makeTlsMaterial(join(dir, 'tls'));
  const sizer = new ReadSizer('adaptive');
  /** Sizes of the chunks the last response wrote, as one corked batch each. */
  let batches: number[][] = [];

  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    batches = [];
    let batch: number[] | null = null;
    const cork = res.cork.bind(res);
    const uncork = res.uncork.bind(res);
    const write = res.write.bind(res) as (chunk: Buffer, cb?: (err?: Error | null) => void) => boolean;
    res.cork = () => ((batch = []), cork());
    res.uncork = () => (batch && batches.push(batch), (batch = null), uncork());
    res.write = ((chunk: Buffer, cb?: (err?: Error | null) => void) => (batch?.push(chunk.length), write(chunk, cb))) as typeof res.write;
    void (async () => {
      const fh = await open(file, 'r');
      try {
        res.writeHead(200, { 'Content-Length': SIZE });
        await sendFileBytes(fh, res, 0, SIZE, completeFile(SIZE), sizer);
        res.end();
      } finally {
        await fh.close();
      }
    })();
  };
  const plain = http.createServer(handler);
  const secure = https.createServer({ cert: readFileSync(tls.server.cert), key: readFileSync(tls.server.key) }, handler);
  const ports = { plain: 0, secure: 0 };

  before(async () => {
    writeFileSync(file, data);
    ports.plain = await listenOnFreePort(plain);
    ports.secure = await listenOnFreePort(secure);
  });
  after(async () => {
    await closeServer(plain);
    await closeServer(secure);
    rmSync(dir, { recursive: true, force: true });
  });

  function download(url: string): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const get = url.startsWith('https:') ? https.get : http.get;
      get(url, { ca: readFileSync(tls.ca.cert), agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', reject);
      }).on('error', reject);
    });
  }
  const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  /** The device may have every byte before the server's last write callback: the stream leaves then. */
  async function streamsLeft(): Promise<number> {
    for (let i = 0; i < 100 && sizer.streams > 0; i++) await new Promise((r) => setTimeout(r, 20));
    return sizer.streams;
  }

  it('over TLS: every byte, each write a single slab', async () => {
    const body = await download(`https://localhost:${ports.secure}/`);
    assert.equal(body.length, SIZE);
    assert.equal(digest(body), digest(data));
    assert.ok(batches.length >= SIZE / SLAB);
    for (const b of batches) {
      assert.equal(b.length, 1, 'one buffer per write');
      assert.ok(b[0] <= SLAB);
    }
    assert.equal(await streamsLeft(), 0);
  });

  it('over plain HTTP: every byte, large reads for a download alone', async () => {
    const body = await download(`http://127.0.0.1:${ports.plain}/`);
    assert.equal(digest(body), digest(data));
    const largest = Math.max(...batches.map((b) => b.reduce((x, y) => x + y, 0)));
    assert.ok(largest > SLAB, `largest read ${largest} bytes`);
    assert.ok(batches.some((b) => b.length > 1), 'several slabs in one corked write');
    assert.equal(await streamsLeft(), 0);
  });
});
