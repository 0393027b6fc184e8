import { execFile } from 'node:child_process';

// Debian's wrk 4.1 for peak rates and bulk throughput (C, cheap on the client side), with its
// summary parsed. wrk counts every body byte it reads, so "Transfer/sec" is the download rate.

export interface WrkResult {
  requests: number;
  requestsPerSec: number;
  bytesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  seconds: number;
}

const UNIT: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };
const TIME: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

function toMs(s: string | undefined): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(s ?? '');
  return m ? Number(m[1]) * TIME[m[2]] : NaN;
}

export function parseWrk(out: string): Omit<WrkResult, 'seconds'> {
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
  const transfer = /Transfer\/sec:\s+([\d.]+)(B|KB|MB|GB|TB)/.exec(out);
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = num(/Non-2xx or 3xx responses: (\d+)/);
  return {
    requests: num(/(\d+) requests in/),
    requestsPerSec: num(/Requests\/sec:\s+([\d.]+)/),
    bytesPerSec: transfer ? Number(transfer[1]) * UNIT[transfer[2]] : NaN,
    p50Ms: toMs(/\s50%\s+(\S+)/.exec(out)?.[1]),
    p99Ms: toMs(/\s99%\s+(\S+)/.exec(out)?.[1]),
    errors: (errors ? errors.slice(1).reduce((a, b) => a + Number(b), 0) : 0) + (Number.isNaN(non2xx) ? 0 : non2xx),
  };
}

export interface WrkOptions {
  url: string;
  connections: number;
  seconds: number;
  threads?: number;
  headers?: Record<string, string>;
  timeoutSeconds?: number;
  /** A wrk Lua script (method, body). */
  script?: string;
}

export function runWrk(o: WrkOptions): Promise<WrkResult> {
  const args = [
    '-t',
    String(o.threads ?? 1),
    '-c',
    String(o.connections),
    '-d',
    `${o.seconds}s`,
    '--latency',
    '--timeout',
    `${o.timeoutSeconds ?? 30}s`,
  ];
  for (const [k, v] of Object.entries(o.headers ?? {})) args.push('-H', `${k}: ${v}`);
  if (o.script) args.push('-s', o.script);
  args.push(o.url);
  return new Promise((resolve, reject) => {
    execFile(process.env.BENCH_WRK ?? 'wrk', args, { timeout: (o.seconds + 60) * 1000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`wrk: ${err.message}\n${stderr}`));
      resolve({ ...parseWrk(stdout), seconds: o.seconds });
    });
  });
}
