import { execFileSync } from 'node:child_process';
import { mkdirSync, promises as fsp, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import WebSocket from 'ws';
import { makeTlsMaterial } from '../spec/support/tls-material';
import { loadAverage, machineLine, toolVersion } from './compare/report';
import { startEchoUpstream, startFleet, type EchoUpstream, type Fleet } from './connections/fleet';
import { startGatewaySide, startNginxSide, type ServerSetup, type ServerUnderTest } from './connections/servers';
import { NGINX } from './nginx/nginx-process';
import { previousRuntime, shippedRuntime } from './compare/runtimes';
import { cpuWindow, rssBytes } from '../spec/support/process-stats';
import { runMain } from './part-timer';

// Small-box target 5 (docs/benchmarks.md): 10,000 devices over TLS each hold a WebSocket through the proxy to a
// deviceconnect stand-in (connections/echo-upstream.ts, its own process), with mender-connect's
// ping traffic (both sides ping every 54 s), while a tenth of them also poll deployments/next on keep-alive connections; the
// gateway against nginx as a WebSocket reverse proxy (nginxWsConf, nginx/nginx-conf.ts), the gateway at its
// default Workers against nginx `worker_processes auto`, then both with one worker. The devices
// come from BENCH_CONN_CLIENTS processes (bench/load/ws-devices-process.ts), whose CPU is printed.
// Per side: 1/10 of the devices connect (RSS at that count), then the rest (RSS; memory per
// device = RSS growth of every server process / devices; setup rate and server CPU per
// connection over both steps), the pollers connect, a measured window of echo and poll round
// trips, then every device leaves and the RSS is taken again after BENCH_CONN_SETTLE_S.
// Not a test: nothing fails on speed; missed targets are printed.
// Knobs: BENCH_CONN_DEVICES (10000), BENCH_CONN_POLLERS (devices/10), BENCH_CONN_CLIENTS (4),
// BENCH_CONN_PING_S (54: mender-connect pings every 54 s (its defaultPingWait of 1 min × 9/10)
// and deviceconnect does too (pongWait 60 s × 9/10); 5.4 is ten times that traffic),
// BENCH_CONN_SECONDS (20, the measured window), BENCH_CONN_ECHO_RATE (200 echoes/s in all: a
// sample for the round-trip p99, not load), BENCH_CONN_POLL_S (2, each poller's period),
// BENCH_CONN_SETTLE_S (5), BENCH_CONN_WORKERS (default,1: the pairs to run), BENCH_PREVIOUS_RUNTIME
// (1: the gateway on Node 20 as well, between the gateway and nginx, a column of the summary; 0: not).

interface Knobs {
  devices: number;
  pollers: number;
  clients: number;
  pingMs: number;
  seconds: number;
  echoRate: number;
  pollEveryMs: number;
  settleMs: number;
}

interface SideResult {
  name: string;
  workers: number;
  devices: number;
  established: number;
  throughUpstream: number;
  failed: number;
  firstError?: string;
  dropped: number;
  pongsMissing: number;
  pingsSent: number;
  rssBefore: number;
  rssTenth: number;
  rssFull: number;
  rssAfter: number;
  setupPerSec: number;
  cpuPerConnMs: number;
  clientSetupCpuPct: number;
  echoP50: number;
  echoP99: number;
  pollP50: number;
  pollP99: number;
  polls: number;
  echoes: number;
  echoLost: number;
  pollFailed: number;
  serverCpuPctMeasure: number;
  clientCpuPctMeasure: number;
  load: string;
}

const env = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rssOf = (pids: number[]) => pids.reduce((sum, pid) => sum + rssBytes(pid), 0);
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** The open-file limit every process started here inherits (a child cannot go above it unprivileged). */
function descriptorLimit(): number {
  return Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim());
}

/** Devices a server with `workers` processes can hold within `limit` descriptors per process. */
export function devicesWithin(limit: number, workers: number, wanted: number, pollers: number): number {
  // Per device: its TLS socket and the upstream socket; per poller its socket and, while polls
  // pile up, as many upstream connections; a margin for listeners, files and libraries.
  const margin = 400;
  const fit = Math.floor(((limit - margin - 2 * Math.ceil(pollers / workers)) * workers) / 2);
  return Math.min(wanted, fit);
}

/** A handful of devices come and go first: "before" is a server that has served a WebSocket. */
async function warmUp(port: number, ca: Buffer): Promise<void> {
  const agent = new https.Agent({ ca, keepAlive: false });
  for (let i = 0; i < 4; i++) {
    await new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(`wss://127.0.0.1:${port}/api/devices/v1/deviceconnect/connect`, {
        ca,
        servername: 'localhost',
        perMessageDeflate: false,
      } as WebSocket.ClientOptions);
      ws.on('open', () => ws.send(Buffer.alloc(32)));
      ws.on('message', () => ws.close());
      ws.on('close', () => resolve());
      ws.on('error', reject);
    });
    await new Promise<void>((resolve, reject) => {
      https
        .get(
          {
            host: '127.0.0.1',
            port,
            servername: 'localhost',
            agent,
            path: '/api/devices/v1/deployments/device/deployments/next',
            headers: { Authorization: 'Bearer x' },
          },
          (res) => {
            res.resume();
            res.on('end', resolve);
          },
        )
        .on('error', reject);
    });
  }
}

async function runSide(
  k: Knobs,
  devices: number,
  pollers: number,
  start: (upstreamPort: number) => Promise<ServerUnderTest>,
  ca: string,
  print: (l: string) => void,
): Promise<SideResult> {
  let upstream: EchoUpstream | undefined;
  let server: ServerUnderTest | undefined;
  let fleet: Fleet | undefined;
  try {
    upstream = await startEchoUpstream(k.pingMs);
    server = await start(upstream.port);
    const pids = server.pids();
    await warmUp(server.port, readFileSync(ca));
    await sleep(2000);
    const rssBefore = rssOf(pids);
    fleet = await startFleet(k.clients, { host: '127.0.0.1', port: server.port, ca, pingMs: k.pingMs, concurrency: 32 });
    const clientPids = fleet.pids();

    // Setup, in two steps: a tenth (the RSS at that count), then the rest.
    const tenth = Math.round(devices / 10);
    let serverCpu = cpuWindow(() => pids);
    let clientCpu = cpuWindow(() => clientPids);
    const first = await fleet.connect(tenth);
    let cpuSetup = serverCpu();
    let clientCpuSetup = clientCpu();
    let setupMs = first.ms;
    await sleep(1000);
    const rssTenth = rssOf(pids);
    serverCpu = cpuWindow(() => pids);
    clientCpu = cpuWindow(() => clientPids);
    const rest = await fleet.connect(devices - tenth);
    cpuSetup += serverCpu();
    clientCpuSetup += clientCpu();
    setupMs += rest.ms;
    const established = first.established + rest.established;
    await sleep(2000);
    const rssFull = rssOf(pids);
    const throughUpstream = await upstream.connected();
    print(
      `  ${server.name} (${server.workers} worker${server.workers === 1 ? '' : 's'}): ${established}/${devices} connected (${first.keyExchange ?? 'key exchange unknown'}) in ${(setupMs / 1000).toFixed(1)} s; RSS ${mb(rssBefore)} before, ${mb(rssTenth)} at ${tenth}, ${mb(rssFull)} at ${established}`,
    );

    // Under that load: pollers, echoes, pings.
    const polled = await fleet.pollers(pollers);
    const measureCpu = cpuWindow(() => pids);
    const measureClientCpu = cpuWindow(() => clientPids);
    const t0 = performance.now();
    const m = await fleet.measure(k.seconds, k.echoRate, k.pollEveryMs);
    const wallMs = performance.now() - t0;
    const serverCpuPctMeasure = (100 * measureCpu()) / wallMs;
    const clientCpuPctMeasure = (100 * measureClientCpu()) / wallMs;
    const stats = await fleet.stats();
    const load = loadAverage();

    // Every device leaves; the RSS after the proxy has closed every upstream side and settled.
    await fleet.leave();
    const deadline = Date.now() + 30_000;
    while ((await upstream.connected()) > 0 && Date.now() < deadline) await sleep(200);
    await sleep(k.settleMs);
    const rssAfter = rssOf(pids);
    const r: SideResult = {
      name: server.name,
      workers: server.workers,
      devices,
      established,
      throughUpstream,
      failed: first.failed + rest.failed + polled.failed,
      firstError: first.firstError ?? rest.firstError ?? polled.firstError,
      dropped: stats.dropped,
      pongsMissing: stats.pongsMissing,
      pingsSent: stats.pingsSent,
      rssBefore,
      rssTenth,
      rssFull,
      rssAfter,
      setupPerSec: established / (setupMs / 1000),
      cpuPerConnMs: cpuSetup / Math.max(1, established),
      clientSetupCpuPct: (100 * clientCpuSetup) / setupMs,
      echoP50: percentile(m.echoMs, 50),
      echoP99: percentile(m.echoMs, 99),
      pollP50: percentile(m.pollMs, 50),
      pollP99: percentile(m.pollMs, 99),
      polls: m.pollMs.length,
      echoes: m.echoMs.length,
      echoLost: m.echoLost,
      pollFailed: m.pollFailed,
      serverCpuPctMeasure,
      clientCpuPctMeasure,
      load,
    };
    printSide(r, print);
    return r;
  } finally {
    fleet?.stop();
    await server?.stop().catch(() => undefined);
    upstream?.stop();
  }
}

function printSide(r: SideResult, print: (l: string) => void): void {
  print(
    `    established ${r.established} (${r.throughUpstream} reached upstream), failed ${r.failed}${r.firstError ? ` (first: ${r.firstError})` : ''}, dropped ${r.dropped}, pongs missing ${r.pongsMissing} of ${r.pingsSent} pings`,
  );
  print(
    `    memory per device ${kib((r.rssFull - r.rssBefore) / r.established)}; setup ${r.setupPerSec.toFixed(0)} conn/s, server CPU ${r.cpuPerConnMs.toFixed(2)} ms per connection set up (load generator ${r.clientSetupCpuPct.toFixed(0)} % of a core)`,
  );
  print(
    `    under load: echo p50 ${r.echoP50.toFixed(2)} / p99 ${r.echoP99.toFixed(2)} ms (${r.echoes}, lost ${r.echoLost}); poll p50 ${r.pollP50.toFixed(2)} / p99 ${r.pollP99.toFixed(2)} ms (${r.polls}, failed ${r.pollFailed}); server CPU ${r.serverCpuPctMeasure.toFixed(0)} %, load generator ${r.clientCpuPctMeasure.toFixed(0)} % of a core; loadavg ${r.load}`,
  );
  print(
    `    after every device left: RSS ${mb(r.rssAfter)} (before ${mb(r.rssBefore)}: ${((100 * (r.rssAfter - r.rssBefore)) / r.rssBefore).toFixed(0)} %)`,
  );
}

interface Row {
  what: string;
  gateway: string;
  nginx: string;
  ratio: string;
  target: string;
  met: boolean | null;
}

function compareRows(g: SideResult, n: SideResult): Row[] {
  const back = (r: SideResult) => (r.rssAfter - r.rssBefore) / r.rssBefore;
  const ms = (v: number) => `${v.toFixed(2)} ms`;
  /** A figure of both sides and their ratio; `limit`: the target, the highest gateway/nginx ratio (none: context only). */
  const ratioRow = (what: string, figure: (r: SideResult) => number, fmt: (v: number) => string, limit?: number): Row => {
    const [a, b] = [figure(g), figure(n)];
    return {
      what,
      gateway: fmt(a),
      nginx: fmt(b),
      ratio: `${(a / b).toFixed(2)}×`,
      target: limit === undefined ? '' : `≤ ${limit.toFixed(1)}×`,
      met: limit === undefined ? null : a <= limit * b,
    };
  };
  return [
    {
      what: 'established / dropped',
      gateway: `${g.established} / ${g.dropped}`,
      nginx: `${n.established} / ${n.dropped}`,
      ratio: '',
      target: '0 dropped',
      met: g.dropped === 0 && g.failed === 0 && g.established === g.devices,
    },
    ratioRow('memory per connected device', (r) => (r.rssFull - r.rssBefore) / r.established, kib, 1),
    ratioRow(`total RSS at ${g.established}`, (r) => r.rssFull, mb, 1.2),
    ratioRow(`total RSS at ${Math.round(g.devices / 10)}`, (r) => r.rssTenth, mb),
    ratioRow(
      'setup rate',
      (r) => r.setupPerSec,
      (v) => `${v.toFixed(0)}/s`,
    ),
    ratioRow('CPU per connection set up', (r) => r.cpuPerConnMs, ms, 1.5),
    ratioRow('echo round trip p99', (r) => r.echoP99, ms),
    ratioRow('poll p99 under that load', (r) => r.pollP99, ms, 1.5),
    {
      what: 'RSS after all left vs before',
      gateway: `${mb(g.rssBefore)} → ${mb(g.rssAfter)} (${(100 * back(g)).toFixed(0)} %)`,
      nginx: `${mb(n.rssBefore)} → ${mb(n.rssAfter)} (${(100 * back(n)).toFixed(0)} %)`,
      ratio: '',
      target: '≤ +20 %',
      met: back(g) <= 0.2,
    },
  ];
}

export async function runConnectionsBench(print: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<void> {
  const t0 = Date.now();
  const wanted = env('BENCH_CONN_DEVICES', 10_000);
  const k: Knobs = {
    devices: wanted,
    pollers: env('BENCH_CONN_POLLERS', Math.round(wanted / 10)),
    clients: env('BENCH_CONN_CLIENTS', 4),
    pingMs: env('BENCH_CONN_PING_S', 54) * 1000,
    seconds: env('BENCH_CONN_SECONDS', 20),
    echoRate: env('BENCH_CONN_ECHO_RATE', 200),
    pollEveryMs: env('BENCH_CONN_POLL_S', 2) * 1000,
    settleMs: env('BENCH_CONN_SETTLE_S', 5) * 1000,
  };
  const pairs = (process.env.BENCH_CONN_WORKERS ?? 'default,1').split(',');
  const limit = descriptorLimit();
  const ports = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  const ephemeral = ports[1] - ports[0] + 1;
  const shipped = shippedRuntime();
  const previous = previousRuntime();
  const dir = await fsp.mkdtemp(path.join(tmpdir(), 'bench-conn-'));
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  process.on('exit', removeDir);
  try {
    print(
      `# 10,000 connected devices (target 5): ${new Date().toISOString()}, ${toolVersion(NGINX)}; gateway on node ${shipped.version}${previous ? ` and on node ${previous.version} ("${previous.side}")` : ''}`,
    );
    print(`# machine: ${machineLine()}; open files ${limit} per process; ephemeral ports ${ports[0]}-${ports[1]}`);
    print(
      `# ${k.devices} devices from ${k.clients} processes, ${k.pollers} of them also polling every ${k.pollEveryMs / 1000} s; pings every ${k.pingMs / 1000} s each way (mender-connect and deviceconnect: 54 s${k.pingMs === 54_000 ? '' : ', scaled'}); ${k.echoRate} echoes/s; ${k.seconds} s measured`,
    );
    // Each device takes two loopback ports (device → proxy, proxy → upstream), each poller one or two.
    if (2 * (k.devices + k.pollers) > ephemeral)
      print(`# WARNING: ${2 * (k.devices + k.pollers)} loopback connections need more than the ${ephemeral} ephemeral ports`);
    mkdirSync(path.join(dir, 'tls'));
    const tls = makeTlsMaterial(path.join(dir, 'tls'));
    const results: { label: string; gateway: SideResult; previous?: SideResult; nginx: SideResult }[] = [];
    for (const pair of pairs) {
      const gatewayWorkers = pair === 'default' ? undefined : Number(pair);
      const nginxWorkers = pair === 'default' ? ('auto' as const) : Number(pair);
      const setup: Omit<ServerSetup, 'upstreamPort'> = { dir, serverCert: tls.server.cert, serverKey: tls.server.key, descriptors: limit };
      // The count both sides of a pair serve: what one process can hold within the descriptor limit.
      const probe = await startGatewaySide({ ...setup, upstreamPort: 9 }, gatewayWorkers);
      const workers = probe.workers;
      await probe.stop();
      const nginxCount = nginxWorkers === 'auto' ? Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) : nginxWorkers;
      const devices = devicesWithin(limit, Math.min(workers, nginxCount), k.devices, k.pollers);
      const label =
        pair === 'default'
          ? `default settings: gateway Workers auto (${workers}) vs nginx worker_processes auto (${nginxCount})`
          : `gateway Workers ${pair} vs nginx worker_processes ${pair}`;
      print(
        `\n## ${label}: ${devices} devices${devices < k.devices ? ` (not ${k.devices}: ${limit} descriptors per process hold 2 per device and per poller)` : ''}`,
      );
      const side = (start: (upstreamPort: number) => Promise<ServerUnderTest>) => runSide(k, devices, k.pollers, start, tls.ca.cert, print);
      const g = await side((up) => startGatewaySide({ ...setup, upstreamPort: up }, gatewayWorkers));
      const p = previous ? await side((up) => startGatewaySide({ ...setup, upstreamPort: up }, gatewayWorkers, previous)) : undefined;
      const n = await side((up) => startNginxSide({ ...setup, upstreamPort: up }, nginxWorkers));
      results.push({ label, gateway: g, previous: p, nginx: n });
    }
    print('\n## summary (gateway vs nginx, this machine, this run)');
    const major = (v: string) => v.replace(/^v/, '').split('.')[0];
    for (const r of results) {
      const prevRows = r.previous ? compareRows(r.previous, r.nginx) : undefined;
      print(
        `\n### ${r.label}; loadavg ${r.gateway.load} (gateway)${r.previous ? `, ${r.previous.load} (${r.previous.name})` : ''}, ${r.nginx.load} (nginx)`,
      );
      print(
        `| figure | gateway (Node ${major(shipped.version)}) | nginx | ratio | target | |${previous ? ` ${previous.label} (ratio) |` : ''}`,
      );
      print(`|---|---|---|---|---|---|${previous ? '---|' : ''}`);
      compareRows(r.gateway, r.nginx).forEach((row, i) => {
        const prev = prevRows?.[i];
        print(
          `| ${row.what} | ${row.gateway} | ${row.nginx} | ${row.ratio} | ${row.target} | ${row.met === null ? '' : row.met ? 'met' : 'MISSED'} |${prev ? ` ${prev.gateway}${prev.ratio ? ` (${prev.ratio})` : ''} |` : ''}`,
        );
      });
    }
    print(`\nconnections bench took ${((Date.now() - t0) / 1000).toFixed(0)} s; loadavg at the end ${loadAverage()}`);
  } finally {
    removeDir();
    process.off('exit', removeDir);
  }
}

if (require.main === module) runMain('connections bench', runConnectionsBench);
