import http from 'node:http';
import { cpuSnapshot, peakRssBytes, sampleRss, systemNoteSince } from '../spec/support/process-stats';

// Devices for the benchmarks: N concurrent downloads in a loop for a fixed window, bytes
// counted as they arrive, and the serving process's RSS sampled every second from /proc
// (a peak read at the end would miss what was freed; peers-and-performance §2.3).

/** Download `url` once; resolves with the byte count; `count` sees every chunk as it arrives. */
export function fetchAll(
  url: string,
  agent: http.Agent,
  stop: { now: boolean },
  count: (n: number) => void = () => undefined,
): Promise<number> {
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

export interface LoadResult {
  bytes: number;
  seconds: number;
  peakRss: number;
  hwm: number;
  stealPct: number;
  /** 1-minute load average at the end of the window. */
  load1: number;
}

/** `clients` devices downloading in a loop for `seconds`; RSS of `pid` sampled every second. */
export async function load(url: () => string, clients: number, seconds: number, pid: number): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const stop = { now: false };
  let bytes = 0;
  const sampler = sampleRss(() => [pid], 1000);
  const before = cpuSnapshot();
  const t0 = process.hrtime.bigint();
  const loops = Array.from({ length: clients }, async () => {
    while (!stop.now) await fetchAll(url(), agent, stop, (n) => (bytes += n));
  });
  await new Promise((r) => setTimeout(r, seconds * 1000));
  stop.now = true;
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  const counted = bytes;
  await Promise.all(loops);
  const peakRss = sampler.stop();
  const { stealPct, load1 } = systemNoteSince(before);
  agent.destroy();
  return { bytes: counted, seconds: elapsed, peakRss, hwm: peakRssBytes(pid), stealPct, load1 };
}
