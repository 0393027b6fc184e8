import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { readlink as readlinkAsync } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLinkSigner, type LinkSigner } from '../../lib/artifacts/signed-link';
import { startGateway, writeGatewayConfig, type GatewayProcess } from '../support/gateway-process';
import { processTree, rssBytes } from '../support/process-stats';

// The fault suite runs the gateway as users do (`node bin/gateway.js --config FILE`, debug log)
// and counts what it holds from the outside: /proc/<pid>/fd and VmRSS. Every gateway's log is
// appended to one directory, so the whole suite's logs can be searched for secrets at the end.

/** Knobs: CI defaults small, `make faults` raises them. */
export const knob = (name: string, ciDefault: number): number => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : ciDefault;
};

export const LOG_DIR = process.env.FAULTS_LOG_DIR ?? join(tmpdir(), 'mender-gateway-faults-logs');

/** A known SignatureSecret, so tests can mint links the gateway accepts (and look for it in logs). */
export function newSecret(): string {
  return randomBytes(32).toString('base64');
}

export function signerFor(secretB64: string, gatewayUrl: string): LinkSigner {
  return createLinkSigner({ secret: Buffer.from(secretB64, 'base64'), gatewayUrl });
}

export interface RunOptions {
  dir: string;
  name: string;
  config: Record<string, unknown>;
  waitFor?: ('http' | 'https')[];
}

/** Start `node bin/gateway.js` at debug level; its log is kept for the suite-wide secret check.
 *  A generous start timeout: with cluster workers on a loaded 2-core CI box a start takes seconds. */
export async function runGateway(opts: RunOptions): Promise<GatewayProcess> {
  const file = writeGatewayConfig(opts.dir, opts.config, `${opts.name}.conf`);
  const gw = await startGateway({
    configFile: file,
    logLevel: 'debug',
    waitFor: opts.waitFor ?? ['http'],
    timeoutMs: 45_000,
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  const stop = gw.stop.bind(gw);
  let saved = false;
  const save = (): void => {
    if (saved) return;
    saved = true;
    mkdirSync(LOG_DIR, { recursive: true });
    appendFileSync(join(LOG_DIR, `${opts.name}.log`), gw.output());
  };
  gw.process.once('exit', save);
  // The first "listening" line may come from the first of several workers: wait until the whole
  // tree holds a steady number of descriptors, so baselines count every worker.
  let last = -1;
  let steadySince = Date.now();
  const until = Date.now() + 20_000;
  while (Date.now() < until && Date.now() - steadySince < 1_500) {
    const n = fdCount(gw.process.pid!);
    if (n !== last) {
      last = n;
      steadySince = Date.now();
    }
    await sleep(100);
  }
  gw.stop = async (timeoutMs?: number) => {
    const code = await stop(timeoutMs);
    save();
    return code;
  };
  return gw;
}

/** SIGKILL to the gateway process (the primary when there are workers); resolves to the pids of its tree still alive 3 s later. */
export async function kill9(gw: GatewayProcess): Promise<number[]> {
  const p = gw.process;
  if (p.exitCode !== null || p.signalCode !== null) return [];
  const tree = processTree(p.pid!).slice(1);
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGKILL');
  await exited;
  const until = Date.now() + 3_000;
  let left = tree.filter(running);
  while (left.length && Date.now() < until) {
    await sleep(50);
    left = left.filter(running);
  }
  for (const orphan of left) process.kill(orphan, 'SIGKILL'); // never leave them behind
  return left;
}

function running(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

export function alive(gw: GatewayProcess): boolean {
  return gw.process.exitCode === null && gw.process.signalCode === null;
}

const sumOver = (pid: number, one: (p: number) => number): number =>
  processTree(pid).reduce((n, p) => {
    try {
      return n + one(p);
    } catch {
      return n;
    }
  }, 0);

/** Open file descriptors (sockets, files, pipes) of the gateway, workers included. */
export function fdCount(pid: number): number {
  return sumOver(pid, (p) => readdirSync(`/proc/${p}/fd`).length);
}

/** What the open descriptors are, per process of the tree (for a failure message). */
export async function openFds(pid: number): Promise<string> {
  const lines: string[] = [];
  for (const p of processTree(pid)) {
    const names = await Promise.all(readdirSync(`/proc/${p}/fd`).map((f) => readlinkAsync(`/proc/${p}/fd/${f}`).catch(() => '?')));
    const counts = new Map<string, number>();
    for (const n of names) counts.set(n.replace(/\d+/g, 'N'), (counts.get(n.replace(/\d+/g, 'N')) ?? 0) + 1);
    lines.push(`${p}: ${[...counts].map(([k, v]) => `${v}×${k}`).join(' ')}`);
  }
  return lines.join('; ');
}

/** Resident memory in KiB, workers included. */
export function rssKiB(pid: number): number {
  return sumOver(pid, (p) => rssBytes(p) / 1024);
}

/** fd count once the gateway has settled (keep-alive sockets closing); the lowest seen within `ms`. */
export async function settledFds(pid: number, baseline: number, ms = 20_000): Promise<number> {
  const until = Date.now() + ms;
  let low = fdCount(pid);
  while (low > baseline && Date.now() < until) {
    await sleep(250);
    low = Math.min(low, fdCount(pid));
  }
  return low;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export function request(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer; timeoutMs?: number } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: opts.method ?? 'GET', headers: opts.headers, agent: false, timeout: opts.timeoutMs ?? 15_000 },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${new URL(url).pathname} within ${opts.timeoutMs ?? 15_000} ms`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A Mender JSON error: `{"error": "...", "request_id": "..."}`. */
export function assertJsonError(reply: Reply, status: number | RegExp): void {
  if (typeof status === 'number') assert.equal(reply.status, status, reply.body.toString());
  else assert.match(String(reply.status), status, reply.body.toString());
  assert.match(String(reply.headers['content-type']), /application\/json/);
  const parsed = JSON.parse(reply.body.toString()) as { error?: unknown; request_id?: unknown };
  assert.equal(typeof parsed.error, 'string');
  assert.ok((parsed.error as string).length > 0);
  assert.equal(typeof parsed.request_id, 'string');
}

/** What no log line may contain, whatever the secret: JWTs, presigned S3 queries, link signatures, Basic credentials. */
export const SECRET_SHAPES: RegExp[] = [
  /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/, // a JWT
  /X-Amz-(Signature|Credential)=/i,
  /x-men-signature=/i,
  /Authorization[^\n]*(Bearer|Basic) [A-Za-z0-9+/=._-]{8,}/i,
];

export function assertNoSecrets(logText: string, secrets: string[]): void {
  for (const s of secrets.filter((x) => x.length >= 6)) {
    assert.ok(!logText.includes(s), `a secret (${s.slice(0, 3)}…, ${s.length} chars) appears in the gateway log`);
    const b64url = Buffer.from(s, 'base64').toString('base64url');
    if (b64url.length >= 16) assert.ok(!logText.includes(b64url), 'a secret (base64url form) appears in the gateway log');
  }
  for (const shape of SECRET_SHAPES) {
    const m = shape.exec(logText);
    assert.equal(m, null, `gateway log contains ${shape}: …${m ? logText.slice(Math.max(0, m.index - 80), m.index + 40) : ''}`);
  }
}

/** Config for one gateway process on HTTP 127.0.0.1:0 with the artifact proxy (and cache) on. */
export function gatewayConfig(o: {
  upstream: string;
  cachePath?: string;
  secret: string;
  gatewayUrl?: string;
  timeout?: string;
  extra?: Record<string, unknown>;
}): Record<string, unknown> {
  return {
    HTTP: { Enabled: true, Listen: '127.0.0.1:0' },
    UpstreamServer: { URL: o.upstream, Timeout: o.timeout ?? '2s' },
    ShutdownTimeout: '1s',
    Features: {
      ArtifactsProxy: {
        Enabled: true,
        GatewayURL: o.gatewayUrl ?? 'http://gateway.invalid',
        DomainWhitelist: ['127.0.0.1'],
        ArtifactsCache: o.cachePath
          ? { Enabled: true, Path: o.cachePath, SignatureSecret: o.secret, LinkExpireDuration: '1h' }
          : { Enabled: false, SignatureSecret: o.secret },
      },
    },
    ...o.extra,
  };
}

/** A link path (path + query) the gateway accepts for `origin`. */
export function linkPath(signer: LinkSigner, origin: URL | string, expiresInMs = 3_600_000): string {
  const full = signer.mint(typeof origin === 'string' ? origin : origin.href, new Date(Date.now() + expiresInMs));
  return full.slice('http://gateway.invalid'.length);
}
