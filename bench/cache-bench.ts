import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';

// Issue 5 benchmark (not a timed test). Prints, for one machine and one run:
//  1. cold fill with 100 concurrent devices: upstream bytes / artifact size (must be 1.00)
//     and wall time against one device alone;
//  2. cached serve throughput with 50 concurrent downloads;
//  3. peak RSS of the serving process while 200 devices download a 1 GiB artifact,
//     sampled every second (target ≤ 100 MB);
// for read sizes 64 KiB, 256 KiB and adaptive, each against a reference measured in the
// same run: a plain Node file server (createReadStream + pipeline). No nginx on this box.
// BENCH_NODE_FLAGS: extra node flags for the serving process (e.g. --max-semi-space-size=2).
// Sizes and windows: BENCH_BIG_MB, BENCH_COLD_MB, BENCH_COLD_RATE_MB, BENCH_SECONDS, BENCH_ROUNDS.

const MiB = 1024 * 1024;
const BIG = Number(process.env.BENCH_BIG_MB ?? 1024) * MiB;
const COLD = Number(process.env.BENCH_COLD_MB ?? 32) * MiB;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
// BENCH_CLIENTS=50,200 (default): the concurrent-download cases of the cached-serve part.
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
// Origin bytes/s for the cold fill: a gateway's uplink (32 Mbit/s), not loopback, so the
// fill, not the box's serving bandwidth, sets the pace.
const COLD_RATE = Number(process.env.BENCH_COLD_RATE_MB ?? 4) * MiB;

interface Origin {
  url(file: string): URL;
  bytes: number;
  throttle: number;
  close(): Promise<void>;
}

async function startOrigin(dir: string): Promise<Origin> {
  const origin: Origin = { url: (f) => new URL(`http://127.0.0.1:${port}/bucket/${f}?X-Amz-Signature=${randomBytes(6).toString('hex')}`), bytes: 0, throttle: 0, close: async () => void server.close() };
  const server = http.createServer(async (req, res) => {
    const file = path.join(dir, path.basename(new URL(req.url ?? '/', 'http://x').pathname));
    const { size } = await fsp.stat(file);
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    res.writeHead(m ? 206 : 200, { 'Content-Length': size - start, ...(m ? { 'Content-Range': `bytes ${start}-${size - 1}/${size}` } : {}) });
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
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
  return origin;
}

async function makeFile(file: string, size: number): Promise<void> {
  const fh = await fsp.open(file, 'w');
  try {
    for (let off = 0; off < size; off += MiB) await fh.write(randomBytes(Math.min(MiB, size - off)));
  } finally {
    await fh.close();
  }
}

interface Server {
  proc: ChildProcess;
  port: number;
  stop(): Promise<void>;
}

async function startServer(args: string[], extraFlags: string[] = []): Promise<Server> {
  const flags = [...(process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean), ...extraFlags];
  const proc = spawn(process.execPath, [...flags, path.join(__dirname, 'cache-server.js'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).once('line', resolve);
    proc.once('exit', (code) => reject(new Error(`cache-server exited with ${code}`)));
  });
  return {
    proc,
    port: (JSON.parse(line) as { port: number }).port,
    stop: () =>
      new Promise<void>((resolve) => {
        proc.once('exit', () => resolve());
        proc.kill('SIGKILL');
      }),
  };
}

/** Resident set size of a process in bytes, from /proc. */
async function rssOf(pid: number): Promise<{ rss: number; hwm: number }> {
  const status = await fsp.readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** CPU steal and total jiffies, to print steal % per case (this VM has bursty steal). */
async function cpuTimes(): Promise<{ steal: number; total: number }> {
  const cpu = (await fsp.readFile('/proc/stat', 'utf8')).split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return { steal: cpu[7] ?? 0, total: cpu.reduce((a, b) => a + b, 0) };
}

/** Download `url` once; resolves with the byte count; `count` sees every chunk as it arrives. */
function fetchAll(url: string, agent: http.Agent, stop: { now: boolean }, count: (n: number) => void = () => undefined): Promise<number> {
  return new Promise((resolve) => {
    let n = 0;
    const req = http.get(url, { agent }, (res) => {
      res.on('data', (c: Buffer) => {
        n += c.length;
        count(c.length);
        if (stop.now) req.destroy();
      });
      res.on('close', () => resolve(n));
    });
    req.on('error', () => resolve(n));
  });
}

interface LoadResult {
  bytes: number;
  seconds: number;
  peakRss: number;
  hwm: number;
  stealPct: number;
}

/** `clients` devices downloading in a loop for `seconds`; RSS of `pid` sampled every second. */
async function load(url: () => string, clients: number, seconds: number, pid: number): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const stop = { now: false };
  let bytes = 0;
  let peakRss = 0;
  const sampler = setInterval(() => void rssOf(pid).then((r) => (peakRss = Math.max(peakRss, r.rss)), () => undefined), 1000);
  const c0 = await cpuTimes();
  const t0 = process.hrtime.bigint();
  const loops = Array.from({ length: clients }, async () => {
    while (!stop.now) await fetchAll(url(), agent, stop, (n) => (bytes += n));
  });
  await new Promise((r) => setTimeout(r, seconds * 1000));
  stop.now = true;
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  const counted = bytes;
  await Promise.all(loops);
  clearInterval(sampler);
  const c1 = await cpuTimes();
  const final = await rssOf(pid);
  agent.destroy();
  return { bytes: counted, seconds: elapsed, peakRss: Math.max(peakRss, final.rss), hwm: final.hwm, stealPct: (100 * (c1.steal - c0.steal)) / Math.max(1, c1.total - c0.total) };
}

/** Cold fill: `devices` at once on an artifact the cache has never seen; wall time until the last finishes. */
async function coldFill(dir: string, origin: Origin, file: string, devices: number): Promise<{ seconds: number; upstream: number; received: number }> {
  const cachePath = path.join(dir, `cold-${devices}`);
  const server = await startServer(['cache', cachePath, 'adaptive']);
  try {
    const before = origin.bytes;
    origin.throttle = COLD_RATE;
    const agent = new http.Agent({ keepAlive: true, maxSockets: devices });
    const stop = { now: false };
    const t0 = process.hrtime.bigint();
    const got = await Promise.all(Array.from({ length: devices }, () => fetchAll(`http://127.0.0.1:${server.port}/a?o=${encodeURIComponent(origin.url(file).href)}`, agent, stop)));
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    agent.destroy();
    return { seconds, upstream: origin.bytes - before, received: got.reduce((a, b) => a + b, 0) };
  } finally {
    origin.throttle = 0;
    await server.stop();
    await fsp.rm(cachePath, { recursive: true, force: true });
  }
}

const mb = (b: number) => `${(b / 1e6).toFixed(0)} MB`;
const gbps = (r: LoadResult) => r.bytes / r.seconds / 1e9;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function runCacheBench(print: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<void> {
  const dir = await fsp.mkdtemp(path.join(tmpdir(), 'cache-bench-'));
  const origin = await startOrigin(dir);
  try {
    await makeFile(path.join(dir, 'cold.bin'), COLD);
    await makeFile(path.join(dir, 'big.bin'), BIG);

    print(`# artifact cache benchmark (node ${process.version}, loadavg ${(await fsp.readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ')})`);
    print(`\n## cold fill: ${COLD / MiB} MiB artifact, origin throttled to ${COLD_RATE / MiB} MiB/s per response`);
    const one = await coldFill(dir, origin, 'cold.bin', 1);
    const hundred = await coldFill(dir, origin, 'cold.bin', 100);
    print(`1 device alone      : ${one.seconds.toFixed(2)} s, upstream bytes / artifact size = ${(one.upstream / COLD).toFixed(2)}`);
    print(`100 devices at once : ${hundred.seconds.toFixed(2)} s (${(hundred.seconds / one.seconds).toFixed(2)}× one device), upstream bytes / artifact size = ${(hundred.upstream / COLD).toFixed(2)}, bytes to devices / (100 × size) = ${(hundred.received / (100 * COLD)).toFixed(2)}`);

    // One cache directory holding the big artifact, filled once; every cache server adopts it at start.
    const cachePath = path.join(dir, 'warm');
    const bigUrl = origin.url('big.bin');
    const filler = await startServer(['cache', cachePath, 'adaptive']);
    const fillBytes = await fetchAll(`http://127.0.0.1:${filler.port}/a?o=${encodeURIComponent(bigUrl.href)}`, new http.Agent(), { now: false });
    await filler.stop();
    if (fillBytes !== BIG) throw new Error(`warm-up fill got ${fillBytes} of ${BIG} bytes`);

    // The young generation is what grows under 200 streams (per-chunk promises), so each
    // server also runs with a 2 MB semi-space, a start-up flag (NODE_OPTIONS or the unit file).
    const SEMI = ['--max-semi-space-size=2'];
    const variants: [string, string[], string[]][] = [
      ['reference: node createReadStream+pipeline (64 KiB)', ['reference', path.join(dir, 'big.bin')], []],
      ['cache, 64 KiB reads', ['cache', cachePath, String(64 * 1024)], []],
      ['cache, 256 KiB reads', ['cache', cachePath, String(256 * 1024)], []],
      ['cache, adaptive reads', ['cache', cachePath, 'adaptive'], []],
      ['reference, --max-semi-space-size=2', ['reference', path.join(dir, 'big.bin')], SEMI],
      ['cache, adaptive reads, --max-semi-space-size=2', ['cache', cachePath, 'adaptive'], SEMI],
    ];
    const cases = (process.env.BENCH_CLIENTS ?? '50,200').split(',').map(Number);
    for (const clients of cases) {
      print(`\n## cached serve: ${BIG / MiB} MiB artifact, ${clients} concurrent downloads, ${SECONDS} s window, ${ROUNDS} interleaved rounds (median GB/s, highest RSS)${clients >= 200 ? ', RSS target ≤ 100 MB' : ''}`);
      const results = new Map<string, LoadResult[]>(variants.map(([name]) => [name, []]));
      // Rounds A B C D A B C D …: this VM's load and steal come in bursts (peers-and-performance §2.3).
      for (let round = 0; round < ROUNDS; round++) {
        for (const [name, args, flags] of variants) {
          const server = await startServer(args, flags);
          const url = () => `http://127.0.0.1:${server.port}/a?o=${encodeURIComponent(origin.url('big.bin').href)}`;
          results.get(name)!.push(await load(url, clients, SECONDS, server.proc.pid!));
          await server.stop();
        }
      }
      const summary = (rs: LoadResult[]) => ({
        gbps: median(rs.map(gbps)),
        rss: Math.max(...rs.map((r) => r.peakRss)),
        hwm: Math.max(...rs.map((r) => r.hwm)),
        steal: Math.max(...rs.map((r) => r.stealPct)),
        spread: rs.map((r) => gbps(r).toFixed(2)).join('/'),
      });
      const ref = summary(results.get(variants[0][0])!);
      for (const [name] of variants) {
        const r = summary(results.get(name)!);
        const ratio = r === ref || name === variants[0][0] ? '' : ` → ${(r.gbps / ref.gbps).toFixed(2)}× reference throughput, ${(r.rss / ref.rss).toFixed(2)}× its RSS`;
        print(`${name.padEnd(52)}: ${r.gbps.toFixed(2)} GB/s (rounds ${r.spread}), peak RSS ${mb(r.rss)} (sampled 1/s; VmHWM ${mb(r.hwm)}), steal ≤ ${r.steal.toFixed(0)}%${ratio}`);
      }
    }
    print(`\nupstream bytes during the whole run: ${mb(origin.bytes)} (cold ${mb(COLD)} ×2 cases + ${mb(BIG)} once)`);
  } finally {
    await origin.close();
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  runCacheBench().catch((err) => {
    process.stderr.write(`cache bench failed: ${(err as Error).stack}\n`);
    process.exit(1);
  });
}
