import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { join } from 'node:path';
import { ARTIFACT_LINK_PREFIX } from '../../lib/device-api';
import { startGateway, writeGatewayConfig, type GatewayProcess } from './gateway-process';

// What the tests of a gateway with worker processes share: a device download that hashes as
// it streams and times its first and last byte, the workers of a primary, and waiting for them.

export interface Got {
  status: number;
  md5: string;
  length: number;
  /** performance.now() when the request went out, its first body byte came and it ended. */
  startedAt: number;
  firstByteAt: number;
  doneAt: number;
  /** The first MB or so of the body. */
  body: Buffer;
}

export function deviceGet(
  port: number,
  path: string,
  opts: { method?: string; body?: string; agent?: http.Agent | false } = {},
): Promise<Got> {
  const startedAt = performance.now();
  return new Promise((resolve, reject) => {
    const headers = opts.body ? { 'content-type': 'application/json' } : {};
    const req = http.request(
      { host: '127.0.0.1', port, path, method: opts.method ?? 'GET', agent: opts.agent ?? false, headers },
      (res) => {
        const hash = createHash('md5');
        const keep: Buffer[] = [];
        let length = 0;
        let firstByteAt = -1;
        res.on('data', (c: Buffer) => {
          if (firstByteAt < 0) firstByteAt = performance.now();
          hash.update(c);
          length += c.length;
          if (length < 1_000_000) keep.push(c);
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            md5: hash.digest('hex'),
            length,
            startedAt,
            firstByteAt,
            doneAt: performance.now(),
            body: Buffer.concat(keep),
          }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error('device timed out')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

export function childPids(pid: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .map((s) => Number(s.trim()))
      .filter((n) => n > 0);
  } catch {
    return []; // ps exits 1 when there are none
  }
}

export async function until<T>(what: string, probe: () => T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const listeningWorkers = (gw: GatewayProcess) =>
  new Set([...gw.output().matchAll(/msg="listening" listener=http[^\n]* worker=(\d+)\n/g)].map((m) => Number(m[1])));

/**
 * `node bin/gateway.js` with 2 workers, HTTP on 127.0.0.1, the artifact proxy and cache on
 * (whitelist 127.0.0.1; `cache` adds ArtifactsCache keys), once both workers listen.
 */
export async function startTwoWorkers(opts: {
  dir: string;
  upstreamPort: number;
  gatewayUrl: string;
  cache?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
}): Promise<{ gw: GatewayProcess; port: number; configFile: string }> {
  const configFile = writeGatewayConfig(opts.dir, {
    Workers: 2,
    HTTP: { Enabled: true, Listen: '127.0.0.1:0' },
    UpstreamServer: { URL: `http://127.0.0.1:${opts.upstreamPort}` },
    ShutdownTimeout: '5s',
    Features: {
      ArtifactsProxy: {
        Enabled: true,
        GatewayURL: opts.gatewayUrl,
        DomainWhitelist: ['127.0.0.1'],
        ArtifactsCache: { Enabled: true, Path: join(opts.dir, 'cache'), LinkExpireDuration: '1h', ...opts.cache },
      },
    },
  });
  const gw = await startGateway({ configFile, waitFor: ['http'], env: { ...process.env, WORKERS: '', ...opts.env } });
  await until('both workers listening', () => listeningWorkers(gw).size === 2);
  return { gw, port: Number(gw.listeners.http.split(':').pop()), configFile };
}

/** SIGTERM to the primary; any worker still there afterwards is killed. */
export async function stopWithWorkers(gw: GatewayProcess): Promise<void> {
  const children = childPids(gw.process.pid!);
  await gw.stop(10_000);
  for (const c of children) {
    try {
      process.kill(c, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** A device's deployments/next through the gateway: the path of the artifact link it rewrote. */
export async function rewrittenLink(port: number, gatewayUrl: string): Promise<string> {
  const res = await deviceGet(port, '/api/devices/v1/deployments/device/deployments/next', { method: 'POST', body: '{}' });
  if (res.status !== 200) throw new Error(`deployments/next answered ${res.status}`);
  const uri: string = JSON.parse(res.body.toString()).artifact.source.uri;
  if (!uri.startsWith(gatewayUrl + ARTIFACT_LINK_PREFIX)) throw new Error(`not a gateway link: ${uri}`);
  return uri.slice(gatewayUrl.length);
}

/**
 * Keep-alive connections, `perWorker` on each of the two workers, by worker id: a connection
 * stays on the worker that accepted it, and a probe request's logged path tells which one.
 * Fresh connections are not dealt evenly (each worker accepts its own), so a test that needs
 * both workers pins devices to them this way.
 */
export async function pinnedConnections(gw: GatewayProcess, port: number, perWorker: number): Promise<Map<string, http.Agent[]>> {
  const byWorker = new Map<string, http.Agent[]>();
  const enough = () => [...byWorker.values()].filter((a) => a.length >= perWorker).length === 2;
  for (let n = 0; n < 40 && !enough(); n++) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const probe = `/probe-${process.pid}-${n}`;
    await deviceGet(port, probe, { agent });
    const re = new RegExp(`path=${probe} [^\\n]* worker=(\\d+)\\n`);
    const worker = await until(`probe ${n} logged`, () => re.exec(gw.output())?.[1], 5000);
    byWorker.set(worker, [...(byWorker.get(worker) ?? []), agent]);
  }
  if (!enough()) throw new Error(`40 probe connections did not give ${perWorker} on each worker`);
  return byWorker;
}
