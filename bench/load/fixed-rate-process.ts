import http from 'node:http';
import { runMain } from '../part-timer';

// A fixed-rate load generator with latencies corrected for coordinated omission (what wrk2
// does; Debian has no wrk2): request i is due at t0 + i/rate, and its latency is measured from
// that due time, not from when it could be sent. A stalled server therefore shows up as the
// queue of requests that should have been sent meanwhile, not as one slow request.
// Input (argv[2], JSON): url, rate, seconds, connections, headers, warmupSeconds.
// Output: one JSON line with percentiles in milliseconds.

interface Input {
  url: string;
  rate: number;
  seconds: number;
  connections: number;
  headers?: Record<string, string>;
  warmupSeconds?: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function main(): Promise<void> {
  const o = JSON.parse(process.argv[2]) as Input;
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.connections });
  const warmup = o.warmupSeconds ?? 1;
  const total = Math.round(o.rate * (o.seconds + warmup));
  const skip = Math.round(o.rate * warmup);
  const latencies = new Float64Array(total);
  let done = 0;
  let errors = 0;
  let sent = 0;
  const t0 = performance.now() + 10;
  const url = new URL(o.url);
  let finish: () => void;
  const allDone = new Promise<void>((r) => (finish = r));

  const fire = (i: number) => {
    const due = t0 + (i * 1000) / o.rate;
    const req = http.request({ host: url.hostname, port: url.port, path: url.pathname + url.search, agent, headers: o.headers }, (res) => {
      res.resume();
      res.on('end', () => {
        latencies[i] = performance.now() - due;
        if ((res.statusCode ?? 0) >= 400) errors++;
        if (++done === total) finish();
      });
    });
    req.on('error', () => {
      latencies[i] = performance.now() - due;
      errors++;
      if (++done === total) finish();
    });
    req.end();
  };

  const tick = () => {
    const now = performance.now();
    while (sent < total && t0 + (sent * 1000) / o.rate <= now) fire(sent++);
    if (sent < total) setTimeout(tick, 1);
  };
  setTimeout(tick, 10);
  await allDone;
  const elapsed = (performance.now() - t0) / 1000;
  agent.destroy();
  const measured = latencies.slice(skip).sort();
  const ms = (p: number) => Number(percentile(measured, p).toFixed(3));
  process.stdout.write(
    `${JSON.stringify({ requests: measured.length, errors, achievedRate: total / elapsed, p50: ms(50), p90: ms(90), p99: ms(99), p999: ms(99.9), max: ms(100) })}\n`,
  );
}

runMain('fixed-rate', main);
