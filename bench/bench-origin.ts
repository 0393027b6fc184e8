import { randomBytes } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import http from 'node:http';
import * as path from 'node:path';
import { closeServer, listenOnFreePort } from '../spec/support/listen';

// The artifact origin of the cache benchmark, and of the nginx comparison's memory case: files
// of a directory served with Range, every byte counted, optionally throttled per response (an
// uplink, not loopback).

export interface Origin {
  port: number;
  url(file: string): URL;
  bytes: number;
  throttle: number;
  close(): Promise<void>;
}

export async function startOrigin(dir: string): Promise<Origin> {
  const origin: Origin = {
    port: 0,
    url: (f) => new URL(`http://127.0.0.1:${port}/bucket/${f}?X-Amz-Signature=${randomBytes(6).toString('hex')}`),
    bytes: 0,
    throttle: 0,
    close: () => closeServer(server),
  };
  const server = http.createServer(async (req, res) => {
    const file = path.join(dir, path.basename(new URL(req.url ?? '/', 'http://x').pathname));
    const { size } = await fsp.stat(file);
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    res.writeHead(m ? 206 : 200, {
      'Content-Length': size - start,
      ...(m ? { 'Content-Range': `bytes ${start}-${size - 1}/${size}` } : {}),
    });
    const t0 = Date.now();
    let sent = 0;
    for await (const chunk of createReadStream(file, { start, highWaterMark: 256 * 1024 })) {
      if (res.destroyed) break;
      origin.bytes += chunk.length;
      sent += chunk.length;
      if (!res.write(chunk)) await new Promise((r) => res.once('drain', r));
      if (origin.throttle) {
        const ahead = (sent / origin.throttle) * 1000 - (Date.now() - t0);
        if (ahead > 0) await new Promise((r) => setTimeout(r, ahead));
      }
    }
    res.end();
  });
  const port = await listenOnFreePort(server);
  origin.port = port;
  return origin;
}
