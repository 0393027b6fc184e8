import { createReadStream, promises as fsp } from 'node:fs';
import http from 'node:http';
import { pipeline } from 'node:stream/promises';
import { createArtifactCache } from '../lib/cache/artifact-cache';
import { createLogger } from '../lib/observe/log';
import { runMain } from './part-timer';

// The process whose memory the cache benchmark samples: either the artifact cache behind a
// bare HTTP server (`cache <path> <readSize>`), or the reference, a plain Node file server
// (`reference <file>`: fs.createReadStream + pipeline, 64 KiB reads, as measured in
// peers-and-performance §2.2). Prints {"port": N} once listening.

async function main(): Promise<void> {
  const [mode, target, readSize] = process.argv.slice(2);
  let handler: http.RequestListener;
  if (mode === 'cache') {
    const log = createLogger({ level: 'warn' });
    const cache = await createArtifactCache({
      config: { Enabled: true, Path: target, SignatureSecret: '', LinkExpireDuration: '1h', MaxSize: 0, Prewarm: false, FillRateLimit: 0 },
      log,
      tuning: { readSize: readSize === 'adaptive' ? 'adaptive' : Number(readSize) },
    });
    handler = (req, res) => {
      const o = new URL(req.url ?? '/', 'http://x').searchParams.get('o') ?? '';
      void cache.serve(req, res, new URL(o), { requestId: '', log, clientAddress: '', protocol: 'http' });
    };
  } else if (mode === 'reference') {
    const { size } = await fsp.stat(target);
    handler = (_req, res) => {
      res.writeHead(200, { 'Content-Length': size, 'Content-Type': 'application/octet-stream' });
      pipeline(createReadStream(target), res).catch(() => undefined);
    };
  } else {
    throw new Error(`usage: cache-server.js cache <path> <readSize> | reference <file>, got ${mode}`);
  }
  if (process.env.BENCH_MEM_DEBUG) {
    setInterval(() => {
      const m = process.memoryUsage();
      process.stderr.write(
        `${mode} rss ${(m.rss / 1e6).toFixed(0)} heapTotal ${(m.heapTotal / 1e6).toFixed(0)} heapUsed ${(m.heapUsed / 1e6).toFixed(0)} external ${(m.external / 1e6).toFixed(0)}\n`,
      );
    }, 1000).unref();
  }
  const server = http.createServer(handler);
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`);
  });
}

runMain('cache-server', main);
