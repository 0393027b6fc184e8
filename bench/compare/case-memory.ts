import { spawn } from 'node:child_process';
import { cpuSnapshot, rssBytes, sampleRss, systemNoteSince, type SystemNote } from '../../spec/support/process-stats';
import { runWrk } from '../load/wrk';
import { gbps, mb, systemRange, verdictLine, viaNginx, type BenchContext } from './context';
import { startGatewayUnderTest, type GatewaySetup, type GatewayUnderTest } from './gateway-under-test';
import { MAX_STEAL_PCT } from './rounds';

// Memory: a fresh gateway's idle RSS, then its peak (all its processes, and each on its own,
// sampled every second) while 200 devices download a cached 1 GiB artifact over HTTPS; nginx's
// under the same load beside it. The small-box targets (docs/benchmarks.md) are per process: a one-process gateway idles
// at ≤ 50 MB, a cluster primary (it only supervises) at ≤ 45 MB, and each serving process peaks
// at ≤ 100 MB under that load.

const MiB = 1024 * 1024;

/** RSS of a bare `node` process, the floor for any Node server on that runtime. */
async function bareNodeRss(node: string): Promise<number> {
  const child = spawn(node, ['-e', 'setTimeout(() => {}, 5000)'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 1500));
  const rss = rssBytes(child.pid!);
  child.kill('SIGKILL');
  return rss;
}

export async function memoryCase(ctx: BenchContext, setup: GatewaySetup, presigned: string, size: number): Promise<GatewayUnderTest> {
  const clients = Number(process.env.BENCH_MEM_CLIENTS ?? 200);
  const seconds = Number(process.env.BENCH_MEM_SECONDS ?? 10);
  // A fresh gateway process: its idle RSS, then its peak under load, not what earlier cases left.
  await ctx.gateway.stop();
  const gateway = await startGatewayUnderTest(setup, 'memory');
  ctx.gateway = gateway;
  await new Promise((r) => setTimeout(r, 2000));
  const idlePids = gateway.pids();
  const idleEach = idlePids.map(rssBytes);
  const idle = idleEach.reduce((a, b) => a + b, 0);
  const bare = await bareNodeRss(process.execPath);
  // The same on the previous runtime, a fresh process too (its cache: the one it filled earlier).
  const p = ctx.previous;
  let prev: { gateway: GatewayUnderTest; idleEach: number[]; bare: number } | undefined;
  if (p) {
    await p.gateway.stop();
    const pg = await startGatewayUnderTest({ ...setup, cachePath: `${setup.cachePath}-previous`, node: p.runtime.node }, 'memory-previous');
    p.gateway = pg;
    await new Promise((r) => setTimeout(r, 2000));
    prev = { gateway: pg, idleEach: pg.pids().map(rssBytes), bare: await bareNodeRss(p.runtime.node) };
  }
  ctx.print(
    `\n## memory: ${clients} devices downloading a ${size / MiB} MiB cached artifact in a loop for ${seconds} s (wrk -t2 -c${clients}), RSS sampled every second`,
  );
  const notes: SystemNote[] = [];
  const peakOf = async (pids: () => number[], url: string) => {
    const sampler = sampleRss(pids, 1000);
    const before = cpuSnapshot();
    const r = await runWrk({ url, connections: clients, seconds, threads: 2, timeoutSeconds: 600 });
    const note = systemNoteSince(before);
    notes.push(note);
    const peak = sampler.stop();
    return {
      peak,
      each: sampler.peakEach(),
      bytesPerSec: r.bytesPerSec,
      system: `steal ${note.stealPct.toFixed(0)}%, load ${note.load1.toFixed(1)}${note.stealPct > MAX_STEAL_PCT ? ' (steal above the limit: noisy)' : ''}`,
    };
  };
  const g = await peakOf(() => gateway.pids(), gateway.link(presigned, 'https'));
  const pPeak = prev ? await peakOf(() => prev.gateway.pids(), prev.gateway.link(presigned, 'https')) : undefined;
  const n = await peakOf(() => ctx.nginx.workerPids(), viaNginx(ctx, presigned, 'https'));
  const each = idlePids.length > 1 ? ` = ${idleEach.map(mb).join(' + ')} over ${idlePids.length} processes` : '';
  // processTree lists the gateway's own process first: with workers it is the primary, which serves nothing.
  const [primary, ...workers] = idlePids;
  const serving = workers.length > 0 ? workers : [primary];
  const servingPeaks = serving.map((pid) => g.each.get(pid) ?? 0);
  const busiest = Math.max(...servingPeaks);
  ctx.print(
    `  gateway: idle ${mb(idle)}${each} (a bare node process: ${mb(bare)}), peak ${mb(g.peak)} (all its processes; each serving process: ${servingPeaks.map(mb).join(', ')}) at ${gbps(g.bytesPerSec)}; ${g.system}`,
  );
  // The previous runtime's figures: the same split (primary first, then its workers).
  const prevOf = (idleEach: number[]) => {
    const [first, ...rest] = idleEach;
    return { primary: first, workers: rest, one: rest.length === 0 ? first : undefined };
  };
  let prevCells: { peak: string; primary?: string; worker?: string; one?: string } | undefined;
  if (prev && pPeak && p) {
    const [pPrimary, ...pWorkers] = prev.gateway.pids();
    const pServing = (pWorkers.length > 0 ? pWorkers : [pPrimary]).map((pid) => pPeak.each.get(pid) ?? 0);
    const split = prevOf(prev.idleEach);
    ctx.print(
      `  ${p.runtime.side}: idle ${mb(prev.idleEach.reduce((a, b) => a + b, 0))} = ${prev.idleEach.map(mb).join(' + ')} (a bare node ${p.runtime.version} process: ${mb(prev.bare)}), peak ${mb(pPeak.peak)} (each serving process: ${pServing.map(mb).join(', ')}) at ${gbps(pPeak.bytesPerSec)}; ${pPeak.system}`,
    );
    prevCells = {
      peak: `${mb(Math.max(...pServing))}; all ${mb(pPeak.peak)}`,
      primary: split.workers.length > 0 ? mb(split.primary) : undefined,
      worker: split.workers.length > 0 ? mb(Math.max(...split.workers)) : undefined,
      one: split.one !== undefined ? mb(split.one) : undefined,
    };
  }
  ctx.print(`  nginx  : peak ${mb(n.peak)} (master + workers) at ${gbps(n.bytesPerSec)}; ${n.system}`);
  ctx.system = systemRange(
    notes.map((x) => x.load1),
    notes.map((x) => x.stealPct),
  );
  const who = workers.length > 0 ? `each of ${workers.length} workers` : 'one process';
  verdictLine(ctx, {
    name: `peak RSS per serving process, ${clients} HTTPS downloads of ${size / MiB} MiB`,
    gateway: `${mb(busiest)} (${who})`,
    nginx: mb(n.peak),
    ratio: `all processes ${mb(g.peak)} vs nginx ${mb(n.peak)}: ${(g.peak / n.peak).toFixed(1)}×`,
    target: '≤ 100 MB',
    met: busiest <= 100e6,
    previous: prevCells?.peak,
  });
  if (workers.length > 0) {
    const idleWorker = Math.max(...idleEach.slice(1));
    verdictLine(ctx, {
      name: 'idle RSS, cluster primary',
      gateway: mb(idleEach[0]),
      nginx: '–',
      ratio: `all ${idlePids.length} processes ${mb(idle)}`,
      target: '≤ 45 MB',
      met: idleEach[0] <= 45e6,
      previous: prevCells?.primary ?? prevCells?.one,
    });
    verdictLine(ctx, {
      name: 'idle RSS, each worker',
      gateway: mb(idleWorker),
      nginx: '–',
      ratio: `bare node ${mb(bare)}`,
      target: '≤ 50 MB (as one process)',
      met: idleWorker <= 50e6,
      previous: prevCells?.worker && prev ? `${prevCells.worker} (bare node ${mb(prev.bare)})` : undefined,
    });
  } else {
    verdictLine(ctx, {
      name: 'idle RSS, one process',
      gateway: mb(idle),
      nginx: '–',
      ratio: `bare node ${mb(bare)}`,
      target: '≤ 50 MB',
      met: idle <= 50e6,
      previous: prevCells?.one && prev ? `${prevCells.one} (bare node ${mb(prev.bare)})` : undefined,
    });
  }
  return gateway;
}
