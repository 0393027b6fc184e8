import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import { SECRET_FILE } from '../../lib/artifacts/link-secret';
import {
  childPids,
  deviceGet,
  pinnedConnections,
  listeningWorkers,
  rewrittenLink as linkOf,
  startTwoWorkers,
  stopWithWorkers,
  until,
} from '../support/worker-gateway';
import type { GatewayProcess } from '../support/gateway-process';
import { closeServer, listenOnFreePort } from '../support/listen';

// Workers as an operator runs them: `node bin/gateway.js` with Workers: 2, the
// artifact cache on and no SignatureSecret (the primary generates it once). A scripted
// Mender server hands out a presigned link into the S3 store; the gateway rewrites it; 50
// devices on fresh connections (cluster spreads them over both workers) download it.

const GATEWAY_URL = 'http://gateway.example.test';
const SIZE = 3 * 1024 * 1024;
const KEY = 'artifacts/workers.mender';
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

let dir: string;
let store: S3Store;
let gw: GatewayProcess;
let port: number;
let content: Buffer;
let presigned: string;
let configFile: string;
const upstream = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const doc = {
      id: 'd1b4c2a0-0000-4000-8000-000000000001',
      artifact: {
        id: 'a7f0e1b2-0000-4000-8000-000000000002',
        artifact_name: 'release-1',
        source: { uri: presigned, expire: '2099-01-02T03:04:05Z' },
        device_types_compatible: ['test-device'],
      },
    };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc));
  });
});

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'workers-'));
  content = randomBytes(SIZE);
  await writeFile(join(dir, 'a.mender'), content);
  // ~2 s per full download, so all 50 devices ask while the one fill runs.
  store = await startS3Store({ throttleBytesPerSecond: 1_500_000 });
  await store.putObject(KEY, join(dir, 'a.mender'));
  presigned = await store.presignGet(KEY, 3600);
  const upstreamPort = await listenOnFreePort(upstream);
  ({ gw, port, configFile } = await startTwoWorkers({ dir, upstreamPort, gatewayUrl: GATEWAY_URL }));
});

after(async () => {
  if (gw) await stopWithWorkers(gw);
  await closeServer(upstream);
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

const rewrittenLink = () => linkOf(port, GATEWAY_URL);

test('2 workers, 50 concurrent devices on a cold artifact: one origin download, every device gets every byte', async (t) => {
  const secret = await stat(join(dir, 'cache', SECRET_FILE));
  assert.equal(secret.mode & 0o777, 0o600, 'the primary generated the secret once, 0600');
  // Links minted by either worker: the rewritten deployment is itself served by one of them.
  const links = await Promise.all([rewrittenLink(), rewrittenLink()]);
  // 48 devices on fresh connections, and one pinned to each worker, so both serve for certain
  // (fresh connections go to whichever worker accepts first, and under load that can be one).
  const pinned = [...(await pinnedConnections(gw, port, 1)).values()].map((agents) => agents[0]!);
  const t0 = Date.now();
  const devices = Array.from({ length: 50 }, (_, i) => deviceGet(port, links[i % 2], { agent: i < 2 ? pinned[i] : false }));
  const results = await Promise.all(devices);
  const elapsed = Date.now() - t0;
  for (const r of results) {
    assert.equal(r.status, 200);
    assert.equal(r.length, SIZE);
    assert.equal(r.md5, md5(content));
  }
  const stats = store.stats(KEY);
  assert.equal(stats.fullDownloads, 1, `origin downloads: ${JSON.stringify(stats)}`);
  assert.ok(stats.bytesServed <= SIZE * 1.05, `origin bytes ${stats.bytesServed}`);
  // Both workers served devices: the device of the one that did not fill followed the other's file.
  const served = new Set([...gw.output().matchAll(/route=artifact-link[^\n]*status=200[^\n]* worker=(\d+)\n/g)].map((m) => m[1]));
  assert.equal(served.size, 2, 'both workers served artifact downloads');
  const firstBytes = results.map((r) => r.firstByteAt - r.startedAt).sort((a, b) => a - b);
  const firstDone = Math.min(...results.map((r) => r.doneAt - r.startedAt));
  t.diagnostic(
    `50 devices in ${elapsed} ms; first byte median ${firstBytes[25]} ms, max ${firstBytes[49]} ms; first device done at ${firstDone} ms`,
  );
  // The devices of the worker that did not fill followed the other's growing file: every
  // device had bytes before any could finish (waiting for the publish would put half of
  // the first bytes after the fill's end).
  assert.ok(firstBytes[49] < firstDone, `last first byte ${firstBytes[49]} ms, first device done ${firstDone} ms`);
});

test('a killed worker is replaced and the gateway keeps serving', async () => {
  const before = childPids(gw.process.pid!);
  assert.equal(before.length, 2);
  process.kill(before[0], 'SIGKILL');
  const after = await until('a replacement worker', () => {
    const now = childPids(gw.process.pid!);
    return now.length === 2 && !now.includes(before[0]) && now;
  });
  assert.ok(after.includes(before[1]), 'the other worker was left alone');
  await until('the replacement listening', () => listeningWorkers(gw).size === 3);
  assert.match(gw.output(), /msg="worker died: starting a replacement"/);
  for (let i = 0; i < 6; i++) assert.equal((await deviceGet(port, '/api/internal/v1/gateway/alive')).status, 204);
});

test('SIGHUP reloads every worker in place (as with one process): same processes, each logs its reload', async () => {
  const before = childPids(gw.process.pid!).sort();
  const reloads = () => new Set([...gw.output().matchAll(/msg="SIGHUP: reloading certificates[^\n]* worker=(\d+)\n/g)].map((m) => m[1]));
  const seen = reloads().size;
  gw.process.kill('SIGHUP');
  await until('both workers reloading', () => reloads().size === seen + 2);
  assert.deepEqual(childPids(gw.process.pid!).sort(), before);
  assert.equal((await deviceGet(port, '/api/internal/v1/gateway/alive')).status, 204);
});

test('SIGUSR2 replaces the workers one at a time without refusing a request', async () => {
  const before = childPids(gw.process.pid!);
  let stop = false;
  const statuses: number[] = [];
  const errors: string[] = [];
  const load = (async () => {
    while (!stop) {
      try {
        statuses.push((await deviceGet(port, '/api/internal/v1/gateway/alive')).status);
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
  })();
  const replacedBefore = (gw.output().match(/msg="SIGUSR2: workers replaced"/g) ?? []).length;
  gw.process.kill('SIGUSR2');
  await until(
    'the rolling restart to finish',
    () => (gw.output().match(/msg="SIGUSR2: workers replaced"/g) ?? []).length > replacedBefore,
    30_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${gw.output().split('SIGUSR2').slice(1).join('SIGUSR2').slice(-4000)}`);
  });
  stop = true;
  await load;
  const now = childPids(gw.process.pid!);
  assert.equal(now.length, 2);
  assert.ok(
    now.every((p) => !before.includes(p)),
    'every worker is new',
  );
  assert.deepEqual(errors, []);
  assert.ok(statuses.length > 10 && statuses.every((s) => s === 204), `statuses during the restart: ${statuses.length}`);
  // The new workers still sign and verify with the same secret: the artifact is served from the cache.
  const res = await deviceGet(port, await rewrittenLink());
  assert.equal(res.md5, md5(content));
  assert.equal(store.stats(KEY).fullDownloads, 1);
});

test('a replacement that cannot start (the config file broken meanwhile) leaves the other worker serving; a SIGUSR2 while it is broken keeps it; once fixed, SIGUSR2 starts the missing one', async () => {
  const good = await readFile(configFile, 'utf8');
  const before = childPids(gw.process.pid!);
  assert.equal(before.length, 2);
  const failures = () => (gw.output().match(/msg="worker failed to start: serving with the workers already running"/g) ?? []).length;
  const failedBefore = failures();
  await writeFile(configFile, good.slice(0, good.length / 2)); // an edit half saved
  try {
    process.kill(before[0], 'SIGKILL');
    await until('the replacement to fail', () => failures() > failedBefore);
    assert.deepEqual(childPids(gw.process.pid!), [before[1]], 'one worker left, the primary still up');
    for (let i = 0; i < 4; i++) assert.equal((await deviceGet(port, '/api/internal/v1/gateway/alive')).status, 204);
    assert.equal((await deviceGet(port, await rewrittenLink())).md5, md5(content));
    // SIGUSR2 while the file is still broken: the new worker fails, the old one goes on.
    const kept = () => (gw.output().match(/msg="replacement worker did not start: keeping the old one"/g) ?? []).length;
    const keptBefore = kept();
    gw.process.kill('SIGUSR2');
    await until('the replacement to fail', () => kept() > keptBefore);
    assert.deepEqual(childPids(gw.process.pid!), [before[1]]);
  } finally {
    await writeFile(configFile, good);
  }

  const replacedBefore = (gw.output().match(/msg="SIGUSR2: workers replaced"/g) ?? []).length;
  gw.process.kill('SIGUSR2');
  await until(
    'the rolling restart to finish',
    () => (gw.output().match(/msg="SIGUSR2: workers replaced"/g) ?? []).length > replacedBefore,
    30_000,
  );
  const now = childPids(gw.process.pid!);
  assert.equal(now.length, 2, 'the missing worker started');
  assert.ok(!now.includes(before[1]), 'the old worker was replaced too');
  assert.equal((await deviceGet(port, '/api/internal/v1/gateway/alive')).status, 204);
});

test('SIGTERM drains every worker and exits 0', async () => {
  const workers = childPids(gw.process.pid!);
  const code = await gw.stop(15_000);
  assert.equal(code, 0);
  for (const w of workers) assert.throws(() => process.kill(w, 0), 'worker process is gone');
});
