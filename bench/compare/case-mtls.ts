import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { runJsonChild } from '../load/child-json';
import type { DeviceFleet } from '../load/device-fleet';
import { openHeapProbe } from '../load/heap-probe';
import { cpuMs } from '../../spec/support/process-stats';
import { freePort } from '../../spec/support/listen';
import { startNginx, type NginxProcess } from '../nginx/nginx-process';
import { compare, perSec, previousCell, verdictLine, type BenchContext } from './context';
import { startGatewayUnderTest, type GatewayUnderTest } from './gateway-under-test';
import { median } from './rounds';

// Small-box target 6 (docs/benchmarks.md), the client-5 polling pattern: every request on a new TLS connection with
// the device's own client certificate (1,000 devices, one CA), GET deployments/next (→ 204 from
// the lean stub behind both proxies) on the mTLS listener. Full handshakes (no session offered;
// nginx without tickets or cache) and resumed ones (each device offers the TLS 1.3 ticket of its
// previous connection; nginx with tickets and a shared session cache). nginx runs as many
// worker processes as the gateway (one: mTLS keeps the gateway to one process by default); a
// second row (BENCH_MTLS_WORKERS=2) has both at 2, one round. Then the admission state: the
// gateway's heap after 1,000 devices.

const NEXT = '/api/devices/v1/deployments/device/deployments/next?artifact_name=bench-current&device_type=bench';

interface MtlsNginx {
  full: number;
  resume: number;
  proc: NginxProcess;
}

/** An nginx of its own for this case, with the fleet's CA and `workers` worker processes. */
async function startMtlsNginx(ctx: BenchContext, fleet: DeviceFleet, workers: number): Promise<MtlsNginx> {
  const ports = {
    httpPort: await freePort(),
    httpsPort: await freePort(),
    mtlsPort: await freePort(),
    mtlsResumePort: await freePort(),
    passPort: await freePort(),
  };
  const proc = await startNginx(ctx.nginxBinary, {
    prefix: path.join(ctx.dir, `nginx-mtls-${workers}w`),
    workers,
    emulatorPort: ctx.origin.emulatorPort,
    s3Port: ctx.origin.s3Port,
    // Only the mTLS servers are used here; the artifact locations need some upstream port.
    staticPort: ctx.origin.s3Port,
    bucket: 'mender-artifact-storage',
    ...ports,
    stubPort: ctx.origin.stubPort,
    serverCert: ctx.tls.serverCert,
    serverKey: ctx.tls.serverKey,
    clientCa: fleet.ca.cert,
  });
  return { full: ports.mtlsPort, resume: ports.mtlsResumePort, proc };
}

interface HandshakeResult {
  perSec: number;
  failed: number;
  resumed: number;
  handshakes: number;
  /** Untimed first visits of devices without a session (resumed case). */
  primed: number;
}

export async function mtlsCase(ctx: BenchContext): Promise<void> {
  const fleet = ctx.fleet!;
  const concurrency = Number(process.env.BENCH_HANDSHAKE_CONCURRENCY ?? 8);
  // Each device its own token (the stub behind both proxies takes any bearer token): the
  // gateway's status board keeps per-device state keyed by the token's subject.
  const tokens = { first: 0 };
  const start = (name: string, workers?: number, nodeOptions?: string, node?: string) =>
    startGatewayUnderTest(
      {
        node,
        dir: ctx.dir,
        upstreamPort: ctx.origin.stubPort,
        cachePath: path.join(ctx.dir, `mtls-cache-${name}`),
        serverCert: ctx.tls.serverCert,
        serverKey: ctx.tls.serverKey,
        mtlsCa: fleet.ca.cert,
        nodeOptions,
      },
      `mtls-${name}`,
      workers,
    );
  const serverKey = new X509Certificate(readFileSync(ctx.tls.serverCert)).publicKey;
  const keyName = `${serverKey.asymmetricKeyType === 'ec' ? `ECDSA ${serverKey.asymmetricKeyDetails?.namedCurve}` : `${serverKey.asymmetricKeyType?.toUpperCase()} ${serverKey.asymmetricKeyDetails?.modulusLength}`}`;

  /** `prev`: the same gateway on the previous runtime, a side of every comparison (its own rounds). */
  const rows = async (
    gateway: GatewayUnderTest,
    nginx: MtlsNginx,
    label: string,
    rounds: number,
    prev?: { gateway: GatewayUnderTest; side: string; rounds: number },
  ) => {
    const gwPort = Number(new URL(gateway.url('https')).port);
    const prevPort = prev ? Number(new URL(prev.gateway.url('https')).port) : 0;
    const problems: string[] = [];
    const cpu: Record<string, number[]> = {};
    const pids = (name: string) =>
      name === 'gateway' ? gateway.pids() : prev && name === prev.side ? prev.gateway.pids() : nginx.proc.workerPids();
    const prevSide = (resume: boolean) =>
      prev ? [{ name: prev.side, rounds: Math.min(rounds, prev.rounds), run: () => run(prev.side, prevPort, resume) }] : [];
    // The same fleet and load for every side, the warm-up included.
    const load = { path: NEXT, tokens, ca: ctx.tls.ca.cert, devices: fleet.devices, concurrency };
    const run = async (name: string, port: number, resume: boolean): Promise<number> => {
      const cpu0 = cpuMs(pids(name));
      const r = await runJsonChild<HandshakeResult>('handshake-process.js', {
        ...load,
        port,
        seconds: ctx.seconds.rate,
        resume,
        sessionsFile: resume ? path.join(ctx.dir, `sessions-${label}-${name}.json`) : undefined,
      });
      // The server's CPU per connection includes the untimed first visits of the resumed case.
      const key = `${name} ${resume ? 'resumed' : 'full'}`;
      cpu[key] ??= [];
      cpu[key].push((cpuMs(pids(name)) - cpu0) / Math.max(1, r.handshakes + (resume ? r.primed : 0)));
      if (r.failed) problems.push(`${name}: ${r.failed} failed`);
      if (!resume && r.resumed) problems.push(`${name}: ${r.resumed} resumed in the full-handshake case`);
      if (resume && r.resumed < r.handshakes) problems.push(`${name}: ${r.handshakes - r.resumed} of ${r.handshakes} not resumed`);
      return resume ? r.resumed / (r.handshakes / r.perSec) : r.perSec;
    };
    ctx.print(
      `\n## mTLS, client-5 polling (${label}): new TLS 1.3 connection per request, ${fleet.devices.length} devices each with its own P-256 client certificate, GET deployments/next → 204, ${concurrency} concurrent, ${ctx.seconds.rate} s × ${rounds} rounds; server key ${keyName} on both; gateway workers ${gateway.workers}, nginx worker_processes ${gateway.workers}`,
    );
    // Untimed, as in the pass-through case: a fresh Node process's first second is JIT.
    for (const port of prev ? [gwPort, prevPort] : [gwPort]) await runJsonChild('handshake-process.js', { ...load, port, seconds: 1 });
    ctx.print(
      '  full handshakes/s after a 1 s untimed warm-up of the gateway (no session offered; nginx: ssl_session_tickets off, no cache)',
    );
    const full = await compare(
      ctx,
      [
        { name: 'gateway', run: () => run('gateway', gwPort, false) },
        ...prevSide(false),
        { name: 'nginx', run: () => run('nginx', nginx.full, false) },
        // Context, first round only: what nginx's default (tickets on) costs per full handshake.
        { name: 'nginx tickets', once: true, run: () => run('nginx tickets', nginx.resume, false) },
      ],
      perSec,
      rounds,
    );
    const fg = full.summary.get('gateway')!.median;
    const fn = full.summary.get('nginx')!.median;
    const ft = full.summary.get('nginx tickets')!.median;
    ctx.print(
      `  (nginx tickets: the resumable server, tickets on and a shared cache, as nginx's default issues tickets; gateway/nginx tickets ${(fg / ft).toFixed(2)}×)`,
    );
    verdictLine(ctx, {
      name: `mTLS full handshakes/s, ${fleet.devices.length} devices (${label})`,
      gateway: perSec(fg),
      nginx: perSec(fn),
      ratio: `gateway/nginx ${(fg / fn).toFixed(2)}× (vs nginx with tickets ${(fg / ft).toFixed(2)}×)`,
      target: '≥ 1.0×',
      met: fg / fn >= 1,
      previous: previousCell(ctx, full.summary, fn, perSec),
    });
    ctx.print(
      '  resumed handshakes/s (each device offers its previous session; nginx: tickets on, shared cache; a device without a session first connects once, untimed)',
    );
    const resumed = await compare(
      ctx,
      [
        { name: 'gateway', run: () => run('gateway', gwPort, true) },
        ...prevSide(true),
        { name: 'nginx', run: () => run('nginx', nginx.resume, true) },
      ],
      perSec,
      rounds,
    );
    const rg = resumed.summary.get('gateway')!.median;
    const rn = resumed.summary.get('nginx')!.median;
    verdictLine(ctx, {
      name: `mTLS resumed handshakes/s (${label})`,
      gateway: perSec(rg),
      nginx: perSec(rn),
      ratio: `gateway/nginx ${(rg / rn).toFixed(2)}×`,
      target: '(measure)',
      met: null,
      previous: previousCell(ctx, resumed.summary, rn, perSec),
    });
    ctx.print(
      `  server CPU per connection (ms, per round): ${Object.entries(cpu)
        .map(([k, v]) => `${k} ${v.map((x) => x.toFixed(2)).join('/')}`)
        .join(', ')}`,
    );
    // The capacity figure: handshakes/s above are capped by the one load-generating process and
    // by whatever else runs on the box; CPU per handshake is what a site's cores divide.
    const cg = median(cpu['gateway full']);
    const cn = median(cpu['nginx full']);
    verdictLine(ctx, {
      name: `mTLS server CPU per full handshake (${label})`,
      gateway: `${cg.toFixed(2)} ms`,
      nginx: `${cn.toFixed(2)} ms (with tickets ${median(cpu['nginx tickets full']).toFixed(2)} ms)`,
      ratio: `gateway/nginx ${(cg / cn).toFixed(2)}×`,
      target: '≤ 1.3×',
      met: cg / cn <= 1.3,
      previous: prev
        ? `${median(cpu[`${prev.side} full`]).toFixed(2)} ms (${(median(cpu[`${prev.side} full`]) / cn).toFixed(2)}×)`
        : undefined,
    });
    if (problems.length) ctx.print(`  problems: ${problems.join('; ')}`);
  };

  const gateway = await start('default');
  const p = ctx.previous;
  const previous = p ? await start('previous', undefined, undefined, p.runtime.node) : undefined;
  const nginx = await startMtlsNginx(ctx, fleet, gateway.workers);
  try {
    await rows(
      gateway,
      nginx,
      `default: gateway ${gateway.workers} process`,
      ctx.rounds,
      previous && p ? { gateway: previous, side: p.runtime.side, rounds: p.rounds } : undefined,
    );
  } finally {
    await Promise.all([gateway.stop(), previous?.stop(), nginx.proc.stop()]);
  }

  // Opt-in (BENCH_MTLS_WORKERS=2): ~25 s more, and the figure is context, not a target.
  if (process.env.BENCH_MTLS_WORKERS === '2') {
    // Workers: 2 (an explicit key; auto keeps mTLS to one process). Each worker has its own
    // ticket keys: a device whose next connection lands on the other worker gets a full handshake.
    const gateway2 = await start('2w', 2);
    const nginx2 = await startMtlsNginx(ctx, fleet, gateway2.workers);
    try {
      await rows(gateway2, nginx2, `Workers 2, nginx 2 workers`, 1);
    } finally {
      await Promise.all([gateway2.stop(), nginx2.proc.stop()]);
    }
  }

  await admissionState(ctx, fleet, start);
  if (process.env.BENCH_MTLS_PROFILE) await profileFull(ctx, fleet, start, process.env.BENCH_MTLS_PROFILE);
}

/** BENCH_MTLS_PROFILE=FILE: a CPU profile of the one-process gateway through a full-handshake window. */
async function profileFull(
  ctx: BenchContext,
  fleet: DeviceFleet,
  start: (name: string, workers?: number, nodeOptions?: string) => Promise<GatewayUnderTest>,
  file: string,
): Promise<void> {
  const inspectPort = await freePort();
  // BENCH_GATEWAY_NODE_OPTIONS too: --perf-basic-prof names JavaScript frames for perf.
  const gateway = await start('profile', 1, `${process.env.BENCH_GATEWAY_NODE_OPTIONS ?? ''} --inspect=127.0.0.1:${inspectPort}`.trim());
  const probe = await openHeapProbe(inspectPort);
  try {
    const port = Number(new URL(gateway.url('https')).port);
    const load = () =>
      runJsonChild<HandshakeResult>('handshake-process.js', {
        port,
        path: NEXT,
        tokens: { first: 0 },
        ca: ctx.tls.ca.cert,
        devices: fleet.devices,
        concurrency: 8,
        seconds: ctx.seconds.rate,
      });
    await load();
    let r: HandshakeResult | undefined;
    // BENCH_MTLS_PERF=1: perf too (the V8 profile counts TLS work in I/O callbacks as idle).
    const perf = process.env.BENCH_MTLS_PERF
      ? spawn(
          'perf',
          ['record', '-F', process.env.BENCH_MTLS_PERF_HZ ?? '499', '-g', '-p', String(gateway.pid), '-o', `${file}.perf.data`],
          { stdio: 'ignore' },
        )
      : undefined;
    writeFileSync(file, await probe.profile(async () => (r = await load())));
    if (perf) {
      perf.kill('SIGINT');
      await new Promise((resolve) => perf.once('exit', resolve));
    }
    ctx.print(`\n## mTLS profile: ${file} (${r!.perSec.toFixed(0)} full handshakes/s while profiled)`);
  } finally {
    probe.close();
    await gateway.stop();
  }
}

/**
 * Bytes of gateway heap per distinct device: a warmed gateway's heap after a full GC, before
 * and after every device of the fleet has connected once (and a second time: state that grows
 * per visit, not per device, would show there).
 */
async function admissionState(
  ctx: BenchContext,
  fleet: DeviceFleet,
  start: (name: string, workers?: number, nodeOptions?: string) => Promise<GatewayUnderTest>,
): Promise<void> {
  const inspectPort = await freePort();
  const gateway = await start('heap', 1, `--inspect=127.0.0.1:${inspectPort}`);
  const probe = await openHeapProbe(inspectPort);
  try {
    const port = Number(new URL(gateway.url('https')).port);
    const visit = (from: number, to: number, count: number) =>
      runJsonChild<HandshakeResult>('handshake-process.js', {
        port,
        path: NEXT,
        tokens: { first: from },
        ca: ctx.tls.ca.cert,
        devices: fleet.devices.slice(from, to),
        concurrency: 8,
        seconds: 60,
        count,
      });
    // Warm-up: JIT, pools, the first connections' buffers, with 20 devices that stay out of the count.
    const total = fleet.devices.length;
    await visit(total - 20, total, 400);
    const devices = fleet.devices.slice(0, -20);
    const n = devices.length;
    const before = await probe.measure();
    const per = (a: NodeJS.MemoryUsage, b: NodeJS.MemoryUsage) => (b.heapUsed + b.external - a.heapUsed - a.external) / n;
    const after: number[] = [];
    let last = before;
    let failed = 0;
    for (let v = 0; v < Number(process.env.BENCH_MTLS_VISITS ?? 2); v++) {
      failed += (await visit(0, n, n)).failed;
      last = await probe.measure();
      after.push(per(before, last));
    }
    const cache = await runJsonChild<{ bytesPerEntry: number }>('preauth-cache-size.js', n);
    ctx.print(
      `\n## mTLS admission state: gateway heap (heapUsed + external, after a full GC) per distinct device, ${n} devices each polling once per visit, ${after.length} visits (${failed} failed)`,
    );
    ctx.print(
      `  before ${(before.heapUsed / 1e6).toFixed(2)} MB heap + ${(before.external / 1e6).toFixed(2)} MB external; B/device after each visit: ${after.map((b) => b.toFixed(0)).join(', ')} (RSS ${(before.rss / 1e6).toFixed(0)} → ${(last.rss / 1e6).toFixed(0)} MB)`,
    );
    ctx.print(
      `  per-device admission state kept beyond a connection: the preauthorization cache only (auth requests, not polls): ${cache.bytesPerEntry.toFixed(0)} B/entry at ${n} entries, expired entries dropped, at most 100,000`,
    );
    ctx.verdicts.push({
      system: ctx.system,
      name: `mTLS admission state after ${n} distinct devices`,
      gateway: `${after[0].toFixed(0)} B/device heap (later visits: ${after
        .slice(1)
        .map((b) => b.toFixed(0))
        .join(', ')}); preauth cache ${cache.bytesPerEntry.toFixed(0)} B/entry`,
      nginx: '–',
      ratio: 'heap delta after GC',
      target: 'bounded, no growth per visit',
      met: null,
    });
  } finally {
    probe.close();
    await gateway.stop();
  }
}
