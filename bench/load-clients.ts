import { promises as fsp } from 'node:fs';
import http from 'node:http';

// Devices for the benchmarks: N concurrent downloads in a loop for a fixed window, bytes
// counted as they arrive, and the serving process's RSS sampled every second from /proc
// (a peak read at the end would miss what was freed; peers-and-performance §2.3).

/** Resident set size of a process in bytes, from /proc. */
export async function rssOf(pid: number): Promise<{ rss: number; hwm: number }> {
  const status = await fsp.readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** CPU steal and total jiffies, to print steal % per case (this VM has bursty steal). */
export async function cpuTimes(): Promise<{ steal: number; total: number }> {
  const cpu = (await fsp.readFile('/proc/stat', 'utf8')).split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return { steal: cpu[7] ?? 0, total: cpu.reduce((a, b) => a + b, 0) };
}

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
  let peakRss = 0;
  const sampler = setInterval(
    () =>
      void rssOf(pid).then(
        (r) => (peakRss = Math.max(peakRss, r.rss)),
        () => undefined,
      ),
    1000,
  );
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
  return {
    bytes: counted,
    seconds: elapsed,
    peakRss: Math.max(peakRss, final.rss),
    hwm: final.hwm,
    stealPct: (100 * (c1.steal - c0.steal)) / Math.max(1, c1.total - c0.total),
    load1: Number((await fsp.readFile('/proc/loadavg', 'utf8')).split(' ')[0]),
  };
}
