import { mkdirSync, promises as fsp, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { makeTlsMaterial } from '../spec/support/tls-material';
import { makeArtifactFile } from './artifact-file';
import { startOrigin as startFileOrigin, type Origin as FileOrigin } from './bench-origin';
import { cachedCase, warm } from './compare/case-artifacts';
import { coldCase } from './compare/case-cold';
import { memoryCase } from './compare/case-memory';
import { mtlsCase } from './compare/case-mtls';
import { passThroughCase } from './compare/case-requests';
import { windows, type BenchContext } from './compare/context';
import { cacheDir, type GatewaySetup } from './compare/gateway-under-test';
import { startOrigin, type OriginHandle } from './compare/origin';
import { loadAverage, machineLine, printSummary, toolVersion } from './compare/report';
import { MAX_STEAL_PCT } from './compare/rounds';
import { previousRounds, previousRuntime, shippedRuntime } from './compare/runtimes';
import { startProxies, type Running } from './compare/start-proxies';
import { deviceFleet } from './load/device-fleet';
import { NGINX } from './nginx/nginx-process';
import { runMain, timed } from './part-timer';

// The gateway against nginx configured to do the same job, on this machine, in the
// same run: cases alternate A B A B, medians and gateway/nginx ratios per case, steal and load
// per round (rounds above BENCH_MAX_STEAL % are dropped). Everything on 127.0.0.1; every process
// started here is stopped. Not a test: nothing fails on speed; missed targets are printed.
// Knobs: BENCH_ROUNDS (3), BENCH_SECONDS (every window; default 3 s, 4 s for latency),
// BENCH_CASES (passthrough,workers,mtls,cached,cold,memory; `workers` adds a gateway with the
// other worker count to the pass-through and cached cases),
// BENCH_GATEWAY_WORKERS (the `Workers` key; default: the gateway's choice),
// BENCH_NGINX_WORKERS (default: as many as the gateway runs), BENCH_CACHED_MB (64), BENCH_BIG_MB (1024),
// BENCH_COLD_DEVICES/_MB/_RATE_MB/_ROUNDS (500/4/0.5/2), BENCH_MEM_CLIENTS/_SECONDS (200/10),
// BENCH_PREVIOUS_RUNTIME (1: the gateway on Node 20 too, a column of every table; 0: not; or a
// `node` path), BENCH_PREVIOUS_ROUNDS (that side's rounds; default all).

const MiB = 1024 * 1024;

export async function runNginxComparison(print: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<void> {
  const cases = new Set((process.env.BENCH_CASES ?? 'passthrough,workers,mtls,cached,cold,memory').split(','));
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const t0 = Date.now();
  const shipped = shippedRuntime();
  const previous = previousRuntime();
  const versions = `${toolVersion(NGINX)}; ${toolVersion(process.env.BENCH_WRK ?? 'wrk')}; gateway on node ${shipped.version} (${shipped.node})${previous ? ` and on node ${previous.version} (${previous.node})` : ''}`;
  const dir = await fsp.mkdtemp(path.join(tmpdir(), 'bench-nginx-'));
  // An abrupt end (a closed stdout pipe) skips `finally`; the 1 GiB of files must still go.
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  process.on('exit', removeDir);
  let origin: OriginHandle | undefined;
  const running: Running = {};
  let fileOrigin: FileOrigin | undefined;
  const ctxRef: { ctx?: BenchContext } = {};
  try {
    print(`# gateway vs nginx: ${new Date().toISOString()}, ${versions}`);
    print(`# machine: ${machineLine()}`);
    mkdirSync(path.join(dir, 'tls'));
    const tls = makeTlsMaterial(path.join(dir, 'tls'));
    origin = await startOrigin();
    fileOrigin = await startFileOrigin(dir);
    const cachedSize = Number(process.env.BENCH_CACHED_MB ?? 64) * MiB;
    const bigSize = Number(process.env.BENCH_BIG_MB ?? 1024) * MiB;
    const coldSize = Number(process.env.BENCH_COLD_MB ?? 4) * MiB;
    const files = { cached: path.join(dir, 'cached.mender'), big: path.join(dir, 'big.mender'), cold: path.join(dir, 'cold.mender') };
    await timed(
      'nginx › files',
      async () => {
        await makeArtifactFile(files.cached, cachedSize);
        if (cases.has('memory')) await makeArtifactFile(files.big, bigSize);
        if (cases.has('cold')) await makeArtifactFile(files.cold, coldSize);
      },
      print,
    );

    // Upstream: the lean stub, for the pass-through case (origin-process.ts says why); artifacts
    // come from the store through signed links, whatever the upstream.
    const setup: GatewaySetup = {
      dir,
      upstreamPort: origin.stubPort,
      cachePath: cacheDir(dir),
      serverCert: tls.server.cert,
      serverKey: tls.server.key,
    };
    const withWorkers = cases.has('workers') && (cases.has('passthrough') || cases.has('cached'));
    // The mTLS case's devices (made once, kept in the temp dir); nginx trusts their CA.
    const fleet = cases.has('mtls')
      ? await timed('nginx › mTLS device certificates', () => deviceFleet(Number(process.env.BENCH_MTLS_DEVICES ?? 1000)), print)
      : undefined;
    const started = await timed(
      'nginx › start gateways + nginx',
      () =>
        startProxies(running, {
          nginxBinary: NGINX,
          setup,
          origin: origin!,
          fileOrigin: fileOrigin!,
          tls,
          withWorkers,
          mtlsCa: fleet?.ca.cert,
          previous,
        }),
      print,
    );
    print(
      `# gateway: ${started.gateway.workers} worker process(es)${started.other ? ` (and one with ${started.other.workers} to compare worker counts)` : ''}${previous ? `; the same gateway on ${previous.version} as "${previous.side}" (${previousRounds(rounds)} of ${rounds} rounds)` : ''}; nginx worker_processes ${started.nginxWorkers}; rounds with steal > ${MAX_STEAL_PCT}% are dropped (marked *)`,
    );
    const ctx: BenchContext = {
      dir,
      origin,
      gateway: started.gateway,
      otherWorkers: started.other,
      runtime: shipped,
      previous: started.previous && previous ? { runtime: previous, gateway: started.previous, rounds: previousRounds(rounds) } : undefined,
      nginx: started.nginx,
      nginxBinary: NGINX,
      nginxPorts: started.nginxPorts,
      tls: { ca: tls.ca, serverCert: tls.server.cert, serverKey: tls.server.key },
      rounds,
      seconds: windows(),
      print,
      verdicts: [],
      setup,
      fleet,
    };
    ctxRef.ctx = ctx;

    if (cases.has('passthrough')) await timed('nginx › pass-through + latency', () => passThroughCase(ctx), print);
    if (cases.has('mtls')) await timed('nginx › mTLS', () => mtlsCase(ctx), print);
    if (cases.has('cached')) {
      const presigned = await timed(
        'nginx › cached: upload + warm-up',
        async () => {
          const url = await origin!.put('cached.mender', files.cached);
          await warm(ctx, url, cachedSize);
          return url;
        },
        print,
      );
      await timed('nginx › cached', () => cachedCase(ctx, presigned, 'cached.mender', cachedSize), print);
    }
    // The worker figures are taken; the later cases measure one gateway (memory: its RSS).
    await running.other?.stop();
    ctx.otherWorkers = running.other = undefined;
    if (cases.has('cold')) await timed('nginx › cold', () => coldCase(ctx, files.cold), print);
    if (cases.has('memory')) {
      // From the plain file server, not the S3 store: putting 1 GiB into s3rver and filling two
      // caches from it took 45 s; what is measured is serving from the caches.
      const url = fileOrigin.url('big.mender').href;
      await timed('nginx › memory: warm-up', () => warm(ctx, url, bigSize), print);
      await timed('nginx › memory', () => memoryCase(ctx, setup, url, bigSize), print);
    }
    printSummary(print, ctx.verdicts, {
      shipped: `Node ${shipped.version.replace(/^v/, '').split('.')[0]}`,
      previous: ctx.previous?.runtime.label,
    });
    print(`\nnginx comparison took ${((Date.now() - t0) / 1000).toFixed(0)} s; loadavg at the end ${loadAverage()}`);
  } finally {
    await (ctxRef.ctx?.gateway ?? running.gateway)?.stop().catch(() => undefined);
    await (ctxRef.ctx?.previous?.gateway ?? running.previous)?.stop().catch(() => undefined);
    await running.other?.stop().catch(() => undefined);
    await running.nginx?.stop().catch(() => undefined);
    await origin?.stop().catch(() => undefined);
    await fileOrigin?.close();
    await fsp.rm(dir, { recursive: true, force: true });
    process.off('exit', removeDir);
  }
}

if (require.main === module) runMain('nginx comparison', runNginxComparison);
