import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import { createArtifactCache } from '../../lib/cache/artifact-cache';
import { cacheLayout, fillsDir } from '../../lib/cache/store/cache-layout';
import {
  deviceGet,
  pinnedConnections,
  rewrittenLink as linkOf,
  startTwoWorkers,
  stopWithWorkers,
  type Got,
} from '../support/worker-gateway';
import type { GatewayProcess } from '../support/gateway-process';
import { closeServer, listenOnFreePort } from '../support/listen';
import { cacheConfig, download, quietLog, startFront, startOrigin } from './cache-harness';

// ArtifactsCache.FillRateLimit as an operator runs it: `node bin/gateway.js`
// with Workers: 2 and a cap of 4 MiB/s; three cold artifacts asked at once by devices on
// both workers, so fills run in both processes at once. The rate is measured where the fills
// land (the cache's growing files): it is the cap (±10 %), shared, not per fill, and devices
// receive bytes all along, not when the fills end. (The store's own count runs ahead on
// loopback: the socket buffers take whole artifacts.)

const MiB = 1024 * 1024;
const CAP = 4 * MiB;
const SIZE = 6 * MiB;
const KEYS = ['artifacts/cap-0.mender', 'artifacts/cap-1.mender', 'artifacts/cap-2.mender'];
const GATEWAY_URL = 'http://gateway.example.test';
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

let dir: string;
let store: S3Store;
let gw: GatewayProcess;
let port: number;
const contents: Buffer[] = [];
const presigned: string[] = [];
let nextArtifact = 0;
// The scripted Mender server: each deployments/next names the next of the three artifacts.
const upstream = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const i = nextArtifact++ % KEYS.length;
    const doc = {
      id: `d1b4c2a0-0000-4000-8000-00000000000${i}`,
      artifact: {
        id: `a7f0e1b2-0000-4000-8000-00000000000${i}`,
        artifact_name: `release-${i}`,
        source: { uri: presigned[i], expire: '2099-01-02T03:04:05Z' },
        device_types_compatible: ['test-device'],
      },
    };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc));
  });
});

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'uplink-cap-'));
  store = await startS3Store(); // unthrottled: the gateway's cap is the only limit
  for (const key of KEYS) {
    const body = randomBytes(SIZE);
    contents.push(body);
    const file = join(dir, key.replace(/\//g, '_'));
    await writeFile(file, body);
    await store.putObject(key, file);
    presigned.push(await store.presignGet(key, 3600));
  }
  const upstreamPort = await listenOnFreePort(upstream);
  // No prewarm: the devices start the fills, all at once.
  ({ gw, port } = await startTwoWorkers({
    dir,
    upstreamPort,
    gatewayUrl: GATEWAY_URL,
    cache: { Prewarm: false },
    env: { ARTIFACTS_PROXY_CACHE_FILL_RATE_LIMIT: String(CAP) },
  }));
});

after(async () => {
  if (gw) await stopWithWorkers(gw);
  await closeServer(upstream);
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

const connectionsPerWorker = (perWorker: number) => pinnedConnections(gw, port, perWorker);

/** Bytes the gateway has taken from the origin: its fills' tmp files and the entries they published. */
function filledBytes(cachePath: string): number {
  let n = 0;
  for (const sub of ['tmp', 'objects']) {
    const d = join(cachePath, 'v1', sub);
    for (const name of readdirSync(d)) {
      if (name.endsWith('.json')) continue;
      try {
        n += statSync(join(d, name)).size;
      } catch {
        // renamed between readdir and stat: counted in the other directory next time
      }
    }
  }
  return n;
}

const rewrittenLink = () => linkOf(port, GATEWAY_URL);

test('2 workers, 3 artifacts filling at once: the fills take from the origin at the cap (±10 %), devices stream as bytes land', async (t) => {
  const cachePath = join(dir, 'cache');
  const links: string[] = [];
  for (let i = 0; i < KEYS.length; i++) links.push(await rewrittenLink());
  const [w1, w2] = [...(await connectionsPerWorker(3)).entries()];
  // Sample what the gateway has taken from the origin, and what the store has sent.
  const samples: { at: number; filled: number; sent: number }[] = [];
  const base = store.totalBytesServed();
  const sample = () => samples.push({ at: performance.now(), filled: filledBytes(cachePath), sent: store.totalBytesServed() - base });
  const sampler = setInterval(sample, 20);
  // The fills start on both workers: artifacts 0 and 2 on one, 1 on the other; then a device
  // per artifact on the other worker follows the sibling's fill.
  const route = [w1[1][0], w2[1][0], w1[1][1]];
  const devices: Promise<Got>[] = KEYS.map((_, i) => deviceGet(port, links[i], { agent: route[i] }));
  // Each fill is under way on the worker it was routed to (its tmp file exists) before the
  // followers ask: a fixed pause lost that race on a loaded box, and a follower started the fill.
  const fillsStarted = () =>
    ['tmp', 'objects'].reduce((n, sub) => n + readdirSync(join(cachePath, 'v1', sub)).filter((f) => !f.endsWith('.json')).length, 0);
  const deadline = Date.now() + 10_000;
  while (fillsStarted() < KEYS.length) {
    assert.ok(Date.now() < deadline, `fills started after 10 s: ${fillsStarted()} of ${KEYS.length}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  const followers = [w2[1][1], w1[1][2], w2[1][2]];
  devices.push(...KEYS.map((_, i) => deviceGet(port, links[i], { agent: followers[i] })));
  const results = await Promise.all(devices);
  clearInterval(sampler);
  sample();
  for (const [, agents] of [w1, w2]) for (const a of agents) a.destroy();

  results.forEach((r, n) => {
    const i = n % KEYS.length;
    assert.equal(r.status, 200);
    assert.equal(r.length, SIZE);
    assert.equal(r.md5, md5(contents[i]));
  });
  for (const key of KEYS) assert.equal(store.stats(key).fullDownloads, 1, `${key}: one origin download`);
  const total = KEYS.length * SIZE;
  const sent = samples[samples.length - 1].sent;
  assert.ok(sent >= total && sent <= total * 1.02, `origin bytes ${sent}`);

  // The fill rate: from the first byte the fills took to the last.
  const first = samples.find((s) => s.filled > 0)!;
  const last = samples.find((s) => s.filled >= total)!;
  const overall = total / ((last.at - first.at) / 1000);
  // And its steady part, from 20 % to 80 % of the bytes.
  const at = (fraction: number) => samples.find((s) => s.filled >= total * fraction)!;
  const [a, b] = [at(0.2), at(0.8)];
  const steady = (b.filled - a.filled) / ((b.at - a.at) / 1000);
  // The store's side of the same: on loopback the kernel lets a socket buffer tens of MiB
  // (tcp_rmem), so the store runs ahead of the gateway by that much; over a long download
  // the two rates meet, over a few seconds they need not.
  const sentFirst = samples.find((s) => s.sent > 0)!;
  const sentLast = samples.find((s) => s.sent >= total)!;
  const originRate = total / ((sentLast.at - sentFirst.at) / 1000);
  const fillers = new Set([...gw.output().matchAll(/msg="artifact cached"[^\n]* worker=(\d+)\n/g)].map((m) => m[1]));
  const mib = (x: number) => (x / MiB).toFixed(2);
  const pct = (x: number) => `${x >= CAP ? '+' : ''}${((x / CAP - 1) * 100).toFixed(1)} %`;
  const report = `cap ${mib(CAP)} MiB/s: fills took ${mib(total)} MiB in ${((last.at - first.at) / 1000).toFixed(2)} s = ${mib(overall)} MiB/s first to last byte (${pct(overall)}), ${mib(steady)} MiB/s from 20 % to 80 % (${pct(steady)}); the store sent them in ${((sentLast.at - sentFirst.at) / 1000).toFixed(2)} s (${mib(originRate)} MiB/s, socket buffers ahead); filled by workers ${[...fillers].sort().join(',')}`;
  t.diagnostic(report);
  console.log(`# ${report}`);
  assert.ok(Math.abs(overall / CAP - 1) <= 0.1, `fill rate ${mib(overall)} MiB/s, cap ${mib(CAP)} MiB/s`);
  assert.ok(Math.abs(steady / CAP - 1) <= 0.1, `steady fill rate ${mib(steady)} MiB/s, cap ${mib(CAP)} MiB/s`);
  assert.equal(fillers.size, 2, 'both workers ran fills: one cap across processes');

  // Devices followed the fills: each had its first byte long before the fills ended.
  for (const r of results)
    assert.ok(
      r.firstByteAt < last.at - 2000,
      `first byte ${(r.firstByteAt - first.at).toFixed(0)} ms after the fills began, they ended at ${(last.at - first.at).toFixed(0)} ms`,
    );
  assert.deepEqual(readdirSync(join(cachePath, 'v1', 'fills')), [], 'no registration left once the fills ended');
});

test('FillRateLimit 0: fills are not capped and nothing is registered', async (t) => {
  const cachePath = join(dir, 'uncapped');
  const body = randomBytes(SIZE);
  const origin = await startOrigin(body);
  const cache = await createArtifactCache({ config: cacheConfig(cachePath, { FillRateLimit: 0 }), log: quietLog() });
  const front = await startFront(cache);
  try {
    const t0 = performance.now();
    const results = await Promise.all(KEYS.map((k) => download(front.url(origin.url(k)))));
    const seconds = (performance.now() - t0) / 1000;
    for (const r of results) assert.equal(r.md5, md5(body));
    const rate = (KEYS.length * SIZE) / seconds;
    t.diagnostic(`uncapped: ${(rate / MiB).toFixed(1)} MiB/s`);
    // Far above what a 4 MiB/s cap would allow (18 MiB in 4.5 s).
    assert.ok(rate > CAP * 2, `uncapped fills ran at ${(rate / MiB).toFixed(1)} MiB/s`);
    assert.equal(existsSync(fillsDir(cacheLayout(cachePath))), false, 'no fills/ directory without a cap');
  } finally {
    await cache.close();
    await front.close();
    await origin.close();
  }
});
