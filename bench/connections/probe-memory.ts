import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, promises as fsp, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { makeTlsMaterial } from '../../spec/support/tls-material';
import { cpuMs, rssBytes } from '../../spec/support/process-stats';
import { startEchoUpstream, startFleet } from './fleet';
import { startGatewaySide } from './servers';
import { runMain } from '../part-timer';

// Where a one-process gateway's memory per held WebSocket goes (target 5): N devices
// connect, then the gateway's /proc smaps_rollup and, with BENCH_GATEWAY_NODE_OPTIONS=
// --heapsnapshot-signal=SIGTTIN, a heap snapshot (written to the gateway's cwd, the repository)
// are taken at N and after every device left. A tool for measuring changes, not part of a bench
// run. Knobs: BENCH_CONN_DEVICES (2000), BENCH_CONN_SNAPSHOT (1 to signal SIGTTIN); the others
// (BENCH_CONN_MEASURE_S, _PERF, _PERF_LOAD, _TRIM, _SS, _SETTLE_S, _PROBE_WORKERS, _PROBE_NODE, and
// BENCH_GATEWAY_ENV) are in README-bench.md;
// BENCH_CONN_PROF/_PROF_LOAD and _MEMSIGNAL send SIGTTOU (start) and SIGTTIN (stop) resp. SIGTTOU
// around setup or load, for a script the gateway loads with --require in
// BENCH_GATEWAY_NODE_OPTIONS (an inspector CPU profile; process.memoryUsage after gc()).

function rollup(pid: number): string {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const get = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
  const fds = readdirSync(`/proc/${pid}/fd`).length;
  return `${fds} fds, rss ${(rssBytes(pid) / 1e6).toFixed(1)} MB (anon ${(get('Anonymous') / 1e3).toFixed(1)} MB, file ${((get('Rss') - get('Anonymous')) / 1e3).toFixed(1)} MB)`;
}

async function snapshot(pid: number, label: string): Promise<void> {
  if (process.env.BENCH_CONN_SNAPSHOT !== '1') return;
  const cwd = path.resolve(__dirname, '..', '..', '..');
  const before = new Set(readdirSync(cwd).filter((f) => f.endsWith('.heapsnapshot')));
  process.kill(pid, 'SIGTTIN');
  for (let i = 0; i < 600; i++) {
    await new Promise((r) => setTimeout(r, 500));
    const made = readdirSync(cwd).filter((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    if (made.length > 0) {
      await new Promise((r) => setTimeout(r, 2000));
      await fsp.rename(path.join(cwd, made[0]), path.join(tmpdir(), `conn-${label}.heapsnapshot`));
      process.stdout.write(`  heap snapshot: ${path.join(tmpdir(), `conn-${label}.heapsnapshot`)}\n`);
      return;
    }
  }
}

async function main(): Promise<void> {
  const n = Number(process.env.BENCH_CONN_DEVICES ?? 2000);
  const dir = await fsp.mkdtemp(path.join(tmpdir(), 'conn-probe-'));
  mkdirSync(path.join(dir, 'tls'));
  const tls = makeTlsMaterial(path.join(dir, 'tls'));
  let upstream: Awaited<ReturnType<typeof startEchoUpstream>> | undefined;
  let gw: Awaited<ReturnType<typeof startGatewaySide>> | undefined;
  let fleet: Awaited<ReturnType<typeof startFleet>> | undefined;
  try {
    upstream = await startEchoUpstream(5400);
    gw = await startGatewaySide(
      { dir, upstreamPort: upstream.port, serverCert: tls.server.cert, serverKey: tls.server.key, descriptors: 20000 },
      Number(process.env.BENCH_CONN_PROBE_WORKERS ?? 1),
      process.env.BENCH_CONN_PROBE_NODE ? { node: process.env.BENCH_CONN_PROBE_NODE, side: 'gateway' } : undefined,
    );
    fleet = await startFleet(4, { host: '127.0.0.1', port: gw.port, ca: tls.ca.cert, pingMs: 5400, concurrency: 32 });
    const pid = gw.pids()[0];
    await new Promise((r) => setTimeout(r, 1000));
    process.stdout.write(`before: ${rollup(pid)}\n`);
    await snapshot(pid, 'before');
    if (process.env.BENCH_CONN_PROF === '1') process.kill(pid, 'SIGTTOU');
    const perf = process.env.BENCH_CONN_PERF
      ? spawn('perf', ['record', '-F', '999', '-g', '-p', String(pid), '-o', process.env.BENCH_CONN_PERF], { stdio: 'ignore' })
      : undefined;
    if (perf) await new Promise((r) => setTimeout(r, 1000));
    const cpuBefore = cpuMs([pid]);
    const r = await fleet.connect(n);
    // What a setting costs: how fast the devices got in and the gateway's CPU for each.
    process.stdout.write(
      `connect: ${r.established} in ${(r.ms / 1000).toFixed(1)} s (${Math.round(r.established / (r.ms / 1000))}/s), gateway CPU ${((cpuMs([pid]) - cpuBefore) / Math.max(1, r.established)).toFixed(2)} ms per connection\n`,
    );
    if (perf) {
      perf.kill('SIGINT');
      await new Promise((r) => perf.once('exit', r));
    }
    if (process.env.BENCH_CONN_PROF === '1') process.kill(pid, 'SIGTTIN');
    await new Promise((r) => setTimeout(r, 2000));
    const atN = rssBytes(pid);
    process.stdout.write(`at ${r.established}: ${rollup(pid)}\n`);
    for (const worker of gw.pids().slice(1)) process.stdout.write(`  worker ${worker}: ${rollup(worker)}\n`);
    if (process.env.BENCH_CONN_MEMSIGNAL === '1') process.kill(pid, 'SIGTTOU');
    await new Promise((r) => setTimeout(r, 1000));
    if (process.env.BENCH_CONN_MEMSIGNAL === '1') process.stdout.write(`  after gc: ${rollup(pid)}\n`);
    await snapshot(pid, 'held');
    if (process.env.BENCH_CONN_MEASURE_S) {
      // Under load: pollers, echoes and pings as in the bench; the gateway's own log (e.g. with
      // --trace-gc in BENCH_GATEWAY_NODE_OPTIONS) says what it did meanwhile.
      const mark = gw.log().length;
      await fleet.pollers(Math.round(n / 10));
      const perfLoad = process.env.BENCH_CONN_PERF_LOAD
        ? spawn('perf', ['record', '-F', '999', '-g', '-p', String(pid), '-o', process.env.BENCH_CONN_PERF_LOAD], { stdio: 'ignore' })
        : undefined;
      if (process.env.BENCH_CONN_PROF_LOAD === '1') process.kill(pid, 'SIGTTOU');
      const m = await fleet.measure(Number(process.env.BENCH_CONN_MEASURE_S), 1000, 2000);
      if (process.env.BENCH_CONN_PROF_LOAD === '1') process.kill(pid, 'SIGTTIN');
      if (perfLoad) {
        perfLoad.kill('SIGINT');
        await new Promise((r) => perfLoad.once('exit', r));
      }
      const p = (v: number[], q: number) => [...v].sort((a, b) => a - b)[Math.ceil(q * v.length) - 1]?.toFixed(2);
      process.stdout.write(
        `under load: echo p50 ${p(m.echoMs, 0.5)} p99 ${p(m.echoMs, 0.99)} max ${p(m.echoMs, 1)}; poll p50 ${p(m.pollMs, 0.5)} p99 ${p(m.pollMs, 0.99)} max ${p(m.pollMs, 1)} ms\n`,
      );
      const gcs = gw
        .log()
        .slice(mark)
        .split('\n')
        .filter((l) => /Mark-Compact|Scavenge|Mark-sweep/.test(l));
      const ms = gcs.map((l) => Number(/ ([\d.]+) \/ [\d.]+ ms/.exec(l)?.[1] ?? 0));
      process.stdout.write(
        `  gateway GCs meanwhile: ${gcs.length}, longest ${Math.max(0, ...ms).toFixed(1)} ms, total ${ms.reduce((a, b) => a + b, 0).toFixed(0)} ms\n`,
      );
      for (const l of gcs.filter((_, i) => ms[i] > 20).slice(0, 8)) process.stdout.write(`    ${l.trim().slice(0, 160)}\n`);
      for (const l of gw
        .log()
        .slice(mark)
        .split('\n')
        .filter((x) => x.startsWith('ELD'))
        .slice(0, 12))
        process.stdout.write(`    ${l}\n`);
    }
    await fleet.leave();
    let peak = Math.max(atN, rssBytes(pid));
    for (let t = 5; t <= Number(process.env.BENCH_CONN_SETTLE_S ?? 5); t += 5) {
      await new Promise((r) => setTimeout(r, 5000));
      peak = Math.max(peak, rssBytes(pid));
      process.stdout.write(`${t} s after leave: ${rollup(pid)}, highest so far ${(peak / 1e6).toFixed(1)} MB\n`);
      if (process.env.BENCH_CONN_MEMSIGNAL === '1') process.kill(pid, 'SIGTTOU');
    }
    await snapshot(pid, 'after');
    if (process.env.BENCH_CONN_TRIM === '1') {
      // How much of what stays is memory malloc holds free (fragmented), not memory in use.
      execFileSync('gdb', ['-p', String(pid), '-batch', '-ex', 'call (int)malloc_trim(0)'], { stdio: 'ignore' });
      process.stdout.write(`after malloc_trim(0) through gdb: ${rollup(pid)}\n`);
    }
    if (process.env.BENCH_CONN_SS === '1')
      process.stdout.write(
        execFileSync(
          'sh',
          [
            '-c',
            `ls -l /proc/${pid}/fd | awk '{print $NF}' | sed -E 's/[0-9]+//g' | sort | uniq -c; ss -tanH state close-wait state fin-wait-2 state last-ack state established | wc -l`,
          ],
          { encoding: 'utf8' },
        ),
      );
    // MEM lines of a --require'd probe, and the gateway's own trims (lib/server/memory-return.ts;
    // logged at info: BENCH_GATEWAY_ENV=LOG_LEVEL=info keeps that level past the probe's SIGHUP).
    for (const line of gw.log().split('\n'))
      if (line.startsWith('MEM') || line.includes('returned freed memory')) process.stdout.write(`${line}\n`);
  } finally {
    fleet?.stop();
    await gw?.stop();
    upstream?.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

runMain('probe-memory', main);
