import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { startQuietGateway } from '../../spec/support/gateway-process';
import { processTree } from '../../spec/support/process-stats';
import { freePort } from '../../spec/support/listen';
import { NGINX, startNginxWith } from '../nginx/nginx-process';
import { nginxWsConf } from '../nginx/nginx-conf';

// The two proxies of the connection bench, each started for one side of a round and stopped
// after it: the gateway as a user runs it (HTTPS, UpstreamServer, nothing else configured) and
// nginx as a WebSocket reverse proxy (nginxWsConf in nginx-conf.ts).

export interface ServerUnderTest {
  name: string;
  port: number;
  /** Worker processes serving devices. */
  workers: number;
  pids(): number[];
  /** What the server logged (the gateway's stderr; nginx's error log). */
  log(): string;
  stop(): Promise<void>;
}

export interface ServerSetup {
  dir: string;
  upstreamPort: number;
  serverCert: string;
  serverKey: string;
  descriptors: number;
}

/** BENCH_GATEWAY_ENV: `K=V K=V` for the gateway's process only (an allocator's LD_PRELOAD and its
 * settings, MALLOC_ARENA_MAX), not the bench's own processes. */
export function gatewayEnv(text: string | undefined): Record<string, string> {
  const pairs = (text ?? '').split(/\s+/).filter((w) => w.includes('='));
  return Object.fromEntries(pairs.map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]));
}

/** `workers` undefined: the gateway's own choice (the default settings). `runtime`: the `node` to
 * run it on and the side's name (default: the shipped runtime, "gateway"). */
export async function startGatewaySide(
  s: ServerSetup,
  workers: number | undefined,
  runtime?: { node: string; side: string },
): Promise<ServerUnderTest> {
  const config = {
    HTTP: { Enabled: false },
    HTTPS: { Enabled: true, Listen: '127.0.0.1:0', ServerCertificate: s.serverCert, ServerKey: s.serverKey },
    UpstreamServer: { URL: `http://127.0.0.1:${s.upstreamPort}` },
    ...(workers !== undefined ? { Workers: workers } : {}),
  };
  const name = `gateway-conn-${workers ?? 'auto'}${runtime ? '-previous' : ''}`;
  const gw = await startQuietGateway(s.dir, name, config, {
    waitFor: ['https'],
    timeoutMs: 30_000,
    node: runtime?.node,
    nodeOptions: process.env.BENCH_GATEWAY_NODE_OPTIONS,
    env: { ...process.env, ...gatewayEnv(process.env.BENCH_GATEWAY_ENV) },
  });
  const proc = gw.proc;
  return {
    name: runtime?.side ?? 'gateway',
    port: Number(proc.url('https').split(':').pop()),
    workers: gw.workers,
    pids: gw.pids,
    log: () => proc.output(),
    async stop() {
      await proc.stop();
    },
  };
}

export async function startNginxSide(s: ServerSetup, workers: number | 'auto'): Promise<ServerUnderTest> {
  const port = await freePort();
  const prefix = path.join(s.dir, `nginx-conn-${workers}`);
  const text = nginxWsConf({
    prefix,
    workers,
    user: process.getuid?.() === 0 ? 'root' : undefined,
    port,
    upstreamPort: s.upstreamPort,
    serverCert: s.serverCert,
    serverKey: s.serverKey,
    descriptors: s.descriptors,
  });
  const nginx = await startNginxWith(NGINX, prefix, text, [port]);
  // The master and its workers are up once the port accepts; workers are the master's children.
  await new Promise((r) => setTimeout(r, 300));
  return {
    name: 'nginx',
    port,
    workers: processTree(nginx.pid).length - 1,
    pids: () => nginx.workerPids(),
    log: () => {
      try {
        return readFileSync(path.join(prefix, 'error.log'), 'utf8');
      } catch {
        return '';
      }
    },
    stop: () => nginx.stop(),
  };
}
