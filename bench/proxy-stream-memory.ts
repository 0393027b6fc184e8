import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { closeServer, listenOnFreePort } from '../spec/support/listen';
import { startGateway, writeGatewayConfig, type GatewayProcess } from '../spec/support/gateway-process';
import { rssBytes, sampleRss } from '../spec/support/process-stats';
import { runMain } from './part-timer';

// A 1 GiB body through the pass-through proxy, each way, must not grow the gateway's
// memory. Prints the gateway process's idle and peak RSS (sampled every 100 ms from /proc) and
// the throughput through the gateway against the same transfer straight to the upstream.

const SIZE = Number(process.env.BENCH_STREAM_BYTES ?? 1024 * 1024 * 1024);
const CHUNK = Buffer.alloc(64 * 1024, 7);

// The direct transfer is the throughput reference only, and its rate does not depend on the
// body's size: a quarter of it saves seconds of `make bench`.
const DIRECT_SIZE = Math.max(CHUNK.length, Math.floor(SIZE / 4 / CHUNK.length) * CHUNK.length);

function body(size: number): Readable {
  return Readable.from(
    (function* () {
      for (let sent = 0; sent < size; sent += CHUNK.length) yield CHUNK;
    })(),
  );
}

/** PUT `size` bytes, get `size` bytes back; resolves to bytes/s (both ways). */
function roundTrip(port: number, size: number): Promise<number> {
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: 'PUT', path: '/api/devices/v1/bench', agent: false, headers: { 'X-Bench-Size': String(size) } },
      (res) => {
        let n = 0;
        res.on('data', (c: Buffer) => (n += c.length));
        res.on('end', () =>
          n === size ? resolve((2 * size) / (Number(process.hrtime.bigint() - started) / 1e9)) : reject(new Error(`got ${n} bytes`)),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    body(size).pipe(req);
  });
}

export async function benchProxyStreamMemory(): Promise<void> {
  const upstream = http.createServer((req, res) => {
    const hash = createHash('md5');
    req.on('data', (c: Buffer) => hash.update(c));
    req.on('end', () => {
      const size = Number(req.headers['x-bench-size']);
      res.writeHead(200, { 'Content-Length': size });
      body(size).pipe(res);
    });
  });
  const upstreamPort = await listenOnFreePort(upstream);
  const dir = mkdtempSync(join(tmpdir(), 'bench-proxy-'));
  let gateway: GatewayProcess | undefined;
  try {
    const configFile = writeGatewayConfig(dir, {
      HTTP: { Enabled: true, Listen: '127.0.0.1:0' },
      UpstreamServer: { URL: `http://127.0.0.1:${upstreamPort}` },
      // One process, so the RSS sampled is the one that moves the bytes (auto may fork workers).
      Workers: 1,
    });
    gateway = await startGateway({ configFile, waitFor: ['http'] });
    const pid = gateway.process.pid!;
    const port = Number(gateway.listeners.http.split(':').pop());
    await new Promise((r) => setTimeout(r, 500));
    const idle = rssBytes(pid);
    const sampler = sampleRss(() => [pid], 100);
    const viaGateway = await roundTrip(port, SIZE);
    const peak = sampler.stop();
    const direct = await roundTrip(upstreamPort, DIRECT_SIZE);
    const mib = (n: number) => (n / 1048576).toFixed(1);
    const gibps = (n: number) => (n / 1024 ** 3).toFixed(2);
    console.log(`proxy stream: ${mib(SIZE)} MiB up + ${mib(SIZE)} MiB down through the gateway process`);
    console.log(`  gateway RSS idle ${mib(idle)} MiB, peak ${mib(peak)} MiB (growth ${mib(peak - idle)} MiB)`);
    console.log(
      `  throughput via gateway ${gibps(viaGateway)} GiB/s, direct ${gibps(direct)} GiB/s (${mib(DIRECT_SIZE)} MiB each way), gateway/direct ${(viaGateway / direct).toFixed(2)}`,
    );
  } finally {
    await gateway?.stop();
    await closeServer(upstream);
    rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) runMain('proxy stream memory', benchProxyStreamMemory);
