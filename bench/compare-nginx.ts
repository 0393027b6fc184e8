import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, promises as fsp, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { makeTlsMaterial } from '../spec/support/tls-material';
import { cachedCase, coldCase, warm } from './compare/case-artifacts';
import { memoryCase } from './compare/case-memory';
import { mtlsCase, passThroughCase } from './compare/case-requests';
import type { BenchContext, Verdict } from './compare/context';
import { cacheDir, startGatewayUnderTest, type GatewaySetup, type GatewayUnderTest } from './compare/gateway-under-test';
import { startOrigin, type OriginHandle } from './compare/origin';
import { MAX_STEAL_PCT } from './compare/rounds';
import { freePort, startNginx, type NginxProcess } from './nginx/nginx-process';

// Issue 8: the gateway against nginx configured to do the same job, on this machine, in the
// same run: cases alternate A B A B, medians and gateway/nginx ratios per case, steal and load
// per round (rounds above BENCH_MAX_STEAL % are dropped). Everything on 127.0.0.1; every process
// started here is stopped. Not a test: nothing fails on speed; missed targets are printed.
// Knobs: BENCH_ROUNDS (3), BENCH_SECONDS (5), BENCH_CASES (passthrough,mtls,cached,cold,memory),
// BENCH_GATEWAY_WORKERS (the `Workers` key; default: the gateway's choice),
// BENCH_NGINX_WORKERS (default: as many as the gateway runs), BENCH_CACHED_MB (64), BENCH_BIG_MB (1024),
// BENCH_COLD_DEVICES/_MB/_RATE_MB/_ROUNDS (500/4/0.5/2), BENCH_MEM_CLIENTS/_SECONDS (200/10).

const MiB = 1024 * 1024;
// /usr/sbin is not on an ordinary user's PATH on Debian.
const NGINX = process.env.BENCH_NGINX ?? (existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx');

async function makeFile(file: string, size: number): Promise<void> {
  const fh = await fsp.open(file, 'w');
  try {
    for (let off = 0; off < size; off += 4 * MiB) await fh.write(randomBytes(Math.min(4 * MiB, size - off)));
  } finally {
    await fh.close();
  }
}

/** The tool's version line; a readable error when it is missing. */
function tool(name: string): string {
  const r = spawnSync(name, ['-v'], { encoding: 'utf8' });
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') throw new Error(`${name} is not installed: \`make bench\` installs Debian's nginx and wrk with apt-get`);
  return `${r.stderr}${r.stdout}`.split('\n')[0].replace(/ Copyright.*/, '');
}

function printSummary(print: (l: string) => void, verdicts: Verdict[]): void {
  print('\n## summary (gateway vs nginx, this machine, this run)');
  print(`| case | gateway | nginx | result | target | |`);
  print(`|---|---|---|---|---|---|`);
  for (const v of verdicts) print(`| ${v.name} | ${v.gateway} | ${v.nginx} | ${v.ratio} | ${v.target} | ${v.met === null ? '' : v.met ? 'met' : '**MISSED**'} |`);
  const missed = verdicts.filter((v) => v.met === false);
  print(missed.length ? `\nMISSED targets: ${missed.map((v) => v.name).join('; ')}` : '\nevery target met');
}

export async function runNginxComparison(print: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<void> {
  const cases = new Set((process.env.BENCH_CASES ?? 'passthrough,mtls,cached,cold,memory').split(','));
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const seconds = Number(process.env.BENCH_SECONDS ?? 5);
  const t0 = Date.now();
  const versions = `${tool(NGINX)}; ${tool(process.env.BENCH_WRK ?? 'wrk')}; node ${process.version}`;
  const dir = await fsp.mkdtemp(path.join(tmpdir(), 'bench-nginx-'));
  // An abrupt end (a closed stdout pipe) skips `finally`; the 1 GiB of files must still go.
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  process.on('exit', removeDir);
  let origin: OriginHandle | undefined;
  let nginx: NginxProcess | undefined;
  let gateway: GatewayUnderTest | undefined;
  const ctxRef: { ctx?: BenchContext } = {};
  try {
    print(`# gateway vs nginx (issue 8): ${new Date().toISOString()}, ${versions}`);
    print(`# machine: ${readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? '?'}, ${execFileSync('nproc', { encoding: 'utf8' }).trim()} vCPUs, loadavg ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
    mkdirSync(path.join(dir, 'tls'));
    const tls = makeTlsMaterial(path.join(dir, 'tls'));
    origin = await startOrigin();
    const cachedSize = Number(process.env.BENCH_CACHED_MB ?? 64) * MiB;
    const bigSize = Number(process.env.BENCH_BIG_MB ?? 1024) * MiB;
    const coldSize = Number(process.env.BENCH_COLD_MB ?? 4) * MiB;
    const files = { cached: path.join(dir, 'cached.mender'), big: path.join(dir, 'big.mender'), cold: path.join(dir, 'cold.mender') };
    await makeFile(files.cached, cachedSize);
    if (cases.has('memory')) await makeFile(files.big, bigSize);
    if (cases.has('cold')) await makeFile(files.cold, coldSize);

    const setup: GatewaySetup = { dir, emulatorPort: origin.emulatorPort, cachePath: cacheDir(dir), serverCert: tls.server.cert, serverKey: tls.server.key };
    gateway = await startGatewayUnderTest(setup, 'main');
    // Equal work: nginx gets as many worker processes as the gateway chose for itself.
    const workers = process.env.BENCH_NGINX_WORKERS ? Number(process.env.BENCH_NGINX_WORKERS) : gateway.workers;
    const nginxPorts = { http: await freePort(), https: await freePort(), mtls: await freePort(), pass: await freePort() };
    nginx = await startNginx(NGINX, { prefix: path.join(dir, 'nginx'), workers, emulatorPort: origin.emulatorPort, s3Port: origin.s3Port, bucket: 'mender-artifact-storage', httpPort: nginxPorts.http, httpsPort: nginxPorts.https, mtlsPort: nginxPorts.mtls, passPort: nginxPorts.pass, stubPort: origin.stubPort, serverCert: tls.server.cert, serverKey: tls.server.key, clientCa: tls.ca.cert });
    print(`# gateway: ${gateway.workers} worker process(es); nginx worker_processes ${workers}; rounds with steal > ${MAX_STEAL_PCT}% are dropped (marked *)`);
    const ctx: BenchContext = { dir, origin, gateway, nginx, nginxPorts, tls: { ca: tls.ca, serverCert: tls.server.cert, serverKey: tls.server.key }, rounds, seconds, print, verdicts: [], setup };
    ctxRef.ctx = ctx;

    if (cases.has('passthrough')) await passThroughCase(ctx);
    if (cases.has('mtls')) await mtlsCase(ctx);
    if (cases.has('cached')) {
      const presigned = await origin.put('cached.mender', files.cached);
      await warm(ctx, presigned, cachedSize);
      await cachedCase(ctx, presigned, 'cached.mender', cachedSize);
    }
    if (cases.has('cold')) await coldCase(ctx, files.cold);
    if (cases.has('memory')) {
      const presigned = await origin.put('big.mender', files.big);
      await warm(ctx, presigned, bigSize);
      await memoryCase(ctx, setup, presigned, bigSize);
    }
    printSummary(print, ctx.verdicts);
    print(`\nnginx comparison took ${((Date.now() - t0) / 1000).toFixed(0)} s; loadavg at the end ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  } finally {
    await (ctxRef.ctx?.gateway ?? gateway)?.stop().catch(() => undefined);
    await nginx?.stop().catch(() => undefined);
    await origin?.stop().catch(() => undefined);
    await fsp.rm(dir, { recursive: true, force: true });
    process.off('exit', removeDir);
  }
}

if (require.main === module) {
  runNginxComparison().catch((err) => {
    process.stderr.write(`nginx comparison failed: ${(err as Error).stack}\n`);
    process.exit(1);
  });
}
