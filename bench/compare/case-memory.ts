import { spawn } from 'node:child_process';
import { cpuSnapshot, rssBytes, sampleRss, systemNoteSince, type SystemNote } from '../load/system-sample';
import { runWrk } from '../load/wrk';
import { gbps, mb, systemRange, verdictLine, viaNginx, type BenchContext } from './context';
import { startGatewayUnderTest, type GatewaySetup, type GatewayUnderTest } from './gateway-under-test';
import { MAX_STEAL_PCT } from './rounds';

// Memory: a fresh gateway's idle RSS, then its peak (all its processes, sampled every second)
// while 200 devices download a cached 1 GiB artifact; nginx's under the same load beside it.

const MiB = 1024 * 1024;

/** RSS of a bare `node` process, the floor for any Node server. */
async function bareNodeRss(): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 5000)'], { stdio: 'ignore' });
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
  const bare = await bareNodeRss();
  ctx.print(`\n## memory: ${clients} devices downloading a ${size / MiB} MiB cached artifact in a loop for ${seconds} s (wrk -t2 -c${clients}), RSS sampled every second`);
  const notes: SystemNote[] = [];
  const peakOf = async (pids: () => number[], url: string) => {
    const sampler = sampleRss(pids, 1000);
    const before = cpuSnapshot();
    const r = await runWrk({ url, connections: clients, seconds, threads: 2, timeoutSeconds: 600 });
    const note = systemNoteSince(before);
    notes.push(note);
    return { peak: sampler.stop(), bytesPerSec: r.bytesPerSec, system: `steal ${note.stealPct.toFixed(0)}%, load ${note.load1.toFixed(1)}${note.stealPct > MAX_STEAL_PCT ? ' (steal above the limit: noisy)' : ''}` };
  };
  const g = await peakOf(() => gateway.pids(), gateway.link(presigned, 'http'));
  const n = await peakOf(() => ctx.nginx.workerPids(), viaNginx(ctx, presigned, 'http'));
  const each = idlePids.length > 1 ? ` = ${idleEach.map(mb).join(' + ')} over ${idlePids.length} processes` : '';
  ctx.print(`  gateway: idle ${mb(idle)}${each} (a bare node process: ${mb(bare)}), peak ${mb(g.peak)} (all its processes) at ${gbps(g.bytesPerSec)}; ${g.system}`);
  ctx.print(`  nginx  : peak ${mb(n.peak)} (master + workers) at ${gbps(n.bytesPerSec)}; ${n.system}`);
  ctx.system = systemRange(notes.map((x) => x.load1), notes.map((x) => x.stealPct));
  verdictLine(ctx, { name: `peak RSS, ${clients} downloads of ${size / MiB} MiB`, gateway: mb(g.peak), nginx: mb(n.peak), ratio: `gateway peak ${mb(g.peak)}`, target: '≤ 100 MB', met: g.peak <= 100e6 });
  verdictLine(ctx, { name: 'idle RSS', gateway: mb(idle), nginx: '–', ratio: `gateway idle ${mb(idle)}`, target: '≤ 50 MB', met: idle <= 50e6 });
  return gateway;
}
