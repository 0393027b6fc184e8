import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import { ARTIFACT_LINK_PREFIX } from '../../lib/device-api';
import { entryId } from '../../lib/cache/store/cache-key';
import { REPO_ROOT, startGateway, writeGatewayConfig, type GatewayProcess } from '../support/gateway-process';
import { closeServer, listenOnFreePort } from '../support/listen';

// ArtifactsCache.S3 as operators run it: real gateway processes (`node
// bin/gateway.js`), each with its own local cache directory, one S3 store as the shared
// bucket, another as the artifact origin (throttled, so fills overlap), counted at the far
// end. The S3 credentials come from the environment; the gateways share SignatureSecret, so a
// link minted by one is served by any other.

const GATEWAY_URL = 'http://gateway.example.test';
const SIZE = 2 * 1024 * 1024;
const SECRET = randomBytes(32).toString('base64');
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

let dir: string;
let origin: S3Store;
let bucket: S3Store;
let content: Buffer;
/** artifact key in the origin store → its presigned link, handed out by the scripted server */
let presigned = '';
const gateways = new Set<GatewayProcess>();
const outputs: string[] = [];

const upstream = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const doc = {
      id: 'd1b4c2a0-0000-4000-8000-000000000011',
      artifact: {
        id: 'a7f0e1b2-0000-4000-8000-000000000012',
        artifact_name: 'release-11',
        source: { uri: presigned, expire: '2099-01-02T03:04:05Z' },
        device_types_compatible: ['test-device'],
      },
    };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc));
  });
});
let upstreamPort = 0;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shared-s3-'));
  content = randomBytes(SIZE);
  await writeFile(join(dir, 'a.mender'), content);
  // About 2 s per full origin download: both gateways miss while the first fill runs.
  origin = await startS3Store({ throttleBytesPerSecond: 1_000_000 });
  bucket = await startS3Store();
  for (const key of ['artifacts/cold.mender', 'artifacts/down.mender', 'artifacts/down-2.mender', 'artifacts/no-condition.mender'])
    await origin.putObject(key, join(dir, 'a.mender'));
  upstreamPort = await listenOnFreePort(upstream);
});

after(async () => {
  for (const gw of gateways) await gw.stop(5_000);
  await closeServer(upstream);
  await origin?.close();
  await bucket?.close();
  await rm(dir, { recursive: true, force: true });
});

async function startOne(name: string, opts: { endpoint: string; secret?: string }): Promise<GatewayProcess> {
  const configFile = writeGatewayConfig(
    dir,
    {
      Workers: 1,
      HTTP: { Enabled: true, Listen: '127.0.0.1:0' },
      UpstreamServer: { URL: `http://127.0.0.1:${upstreamPort}` },
      ShutdownTimeout: '3s',
      Features: {
        ArtifactsProxy: {
          Enabled: true,
          GatewayURL: GATEWAY_URL,
          DomainWhitelist: ['127.0.0.1'],
          ArtifactsCache: {
            Enabled: true,
            Path: join(dir, `cache-${name}`),
            SignatureSecret: opts.secret ?? SECRET,
            LinkExpireDuration: '1h',
            S3: { Enabled: true, Endpoint: opts.endpoint, Bucket: bucket.bucket, Region: bucket.region, Prefix: 'gateway-cache' },
          },
        },
      },
    },
    `${name}.conf`,
  );
  const env = {
    ...process.env,
    WORKERS: '',
    ARTIFACTS_PROXY_CACHE_S3_ACCESS_KEY_ID: bucket.accessKey,
    ARTIFACTS_PROXY_CACHE_S3_SECRET_ACCESS_KEY: bucket.secretKey,
  };
  const gw = await startGateway({ configFile, waitFor: ['http'], env, timeoutMs: 30_000 });
  gateways.add(gw);
  return gw;
}

async function stopOne(gw: GatewayProcess): Promise<void> {
  await gw.stop(5_000);
  outputs.push(gw.output());
  gateways.delete(gw);
}

const portOf = (gw: GatewayProcess) => Number(gw.listeners.http.split(':').pop());

function get(
  port: number,
  path: string,
  method = 'GET',
  body?: string,
): Promise<{ status: number; md5: string; length: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      const hash = createHash('md5');
      const head: Buffer[] = [];
      let length = 0;
      res.on('data', (c: Buffer) => {
        hash.update(c);
        if (length < 64 * 1024) head.push(c);
        length += c.length;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, md5: hash.digest('hex'), length, text: Buffer.concat(head).toString() }));
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error('device timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

/** The scripted server hands out `key`'s presigned link; the gateway's rewrite of it. */
async function linkFor(gw: GatewayProcess, key: string): Promise<string> {
  presigned = await origin.presignGet(key, 3600);
  const res = await get(portOf(gw), '/api/devices/v1/deployments/device/deployments/next', 'POST', '{}');
  assert.equal(res.status, 200, res.text);
  const uri = (JSON.parse(res.text) as { artifact: { source: { uri: string } } }).artifact.source.uri;
  assert.ok(uri.startsWith(GATEWAY_URL + ARTIFACT_LINK_PREFIX), uri);
  return uri.slice(GATEWAY_URL.length);
}

async function devices(targets: [GatewayProcess, string][]): Promise<void> {
  const results = await Promise.all(targets.map(([gw, link]) => get(portOf(gw), link)));
  for (const r of results) {
    assert.equal(r.status, 200, r.text.slice(0, 200));
    assert.equal(r.length, SIZE);
    assert.equal(r.md5, md5(content));
  }
}

/** The bucket object of an origin artifact: Prefix + v1/objects/ + the local entry id. */
function bucketKey(key: string): string {
  const host = new URL(origin.endpoint).host;
  return `gateway-cache/v1/objects/${entryId(`${host}/${origin.bucket}/${key}`)}`;
}

test('two gateways, separate cache dirs, one bucket: 50 devices on a cold artifact, one origin download; a third gateway started later serves it from the bucket', async (t) => {
  const key = 'artifacts/cold.mender';
  const [a, b] = await Promise.all([startOne('a', { endpoint: bucket.endpoint }), startOne('b', { endpoint: bucket.endpoint })]);
  // Each gateway's own link (same secret), and each served by the other one too.
  const [linkA, linkB] = [await linkFor(a, key), await linkFor(b, key)];
  const t0 = Date.now();
  await devices(Array.from({ length: 50 }, (_, i): [GatewayProcess, string] => [i % 2 ? b : a, i % 4 < 2 ? linkA : linkB]));
  const coldMs = Date.now() - t0;
  const after2 = origin.stats(key);
  assert.equal(after2.fullDownloads, 1, `origin downloads with two gateways: ${JSON.stringify(after2)}\n${a.output()}\n${b.output()}`);
  assert.ok(after2.bytesServed <= SIZE * 1.05, `origin bytes ${after2.bytesServed}`);
  // One of them filled from the origin and shared it; the other filled from the bucket.
  const both = a.output() + b.output();
  assert.equal([...both.matchAll(/msg="artifact shared in the bucket"/g)].length, 1, both);
  assert.equal(bucket.stats(bucketKey(key)).fullDownloads, 1, JSON.stringify(bucket.stats(bucketKey(key))));

  const c = await startOne('c', { endpoint: bucket.endpoint });
  const t1 = Date.now();
  await devices(Array.from({ length: 10 }, (): [GatewayProcess, string] => [c, linkA]));
  const warmMs = Date.now() - t1;
  assert.deepEqual(origin.stats(key), after2, 'the third gateway never asked the origin');
  assert.equal(bucket.stats(bucketKey(key)).fullDownloads, 2);
  t.diagnostic(
    `origin downloads: 1 for 50 devices on 2 gateways (${coldMs} ms), 0 more for 10 devices on a third gateway (${warmMs} ms, from the bucket)`,
  );
  await Promise.all([a, b, c].map(stopOne));
});

test('bucket unreachable: devices are served from the origin, one warn line, links of a gateway with another secret are refused', async (t) => {
  // A port that was just free and is closed now: connection refused.
  const probe = http.createServer();
  const deadPort = await listenOnFreePort(probe);
  await closeServer(probe);
  const otherSecret = randomBytes(32).toString('base64');
  const [d, a] = await Promise.all([
    startOne('d', { endpoint: `http://127.0.0.1:${deadPort}`, secret: otherSecret }),
    startOne('a2', { endpoint: bucket.endpoint }),
  ]);
  const link = await linkFor(d, 'artifacts/down.mender');
  await devices(Array.from({ length: 10 }, (): [GatewayProcess, string] => [d, link]));
  const link2 = await linkFor(d, 'artifacts/down-2.mender');
  await devices(Array.from({ length: 4 }, (): [GatewayProcess, string] => [d, link2]));
  assert.equal(origin.stats('artifacts/down.mender').fullDownloads, 1);
  assert.equal(origin.stats('artifacts/down-2.mender').fullDownloads, 1);
  const warns = [...d.output().matchAll(/level=warning msg="shared cache bucket unreachable[^\n]*/g)].map((m) => m[0]);
  assert.equal(warns.length, 1, d.output());
  t.diagnostic(warns[0]!);
  // Signed links are only as shared as the secret: the other gateway refuses d's link.
  assert.equal((await get(portOf(a), link)).status, 403);
  await Promise.all([d, a].map(stopOne));
});

test('a bucket that ignores If-None-Match: the gateways notice, and lock by write, settle, read back', async (t) => {
  const loose = await startS3Store({ conditionalWrites: false });
  try {
    const endpoint = loose.endpoint;
    const key = 'artifacts/no-condition.mender';
    const [e, f] = await Promise.all([startOne('e', { endpoint }), startOne('f', { endpoint })]);
    const link = await linkFor(e, key);
    await devices(Array.from({ length: 20 }, (_, i): [GatewayProcess, string] => [i % 2 ? f : e, link]));
    const stats = origin.stats(key);
    t.diagnostic(`origin downloads without conditional writes: ${stats.fullDownloads}`);
    assert.equal(stats.fullDownloads, 1, `${JSON.stringify(stats)}\n${e.output()}\n${f.output()}`);
    assert.match(e.output() + f.output(), /shared cache bucket ignores conditional writes/);
    await Promise.all([e, f].map(stopOne));
  } finally {
    await loose.close();
  }
});

/** Run the gateway until it exits (a start-up failure): exit code and what it printed. */
function runToExit(configFile: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'gateway.js'), '--config', configFile], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (t: string) => (output += t));
  child.stderr.setEncoding('utf8').on('data', (t: string) => (output += t));
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    }),
  );
}

test('S3 set from the environment only: without minio, or without a bucket, the gateway stops at start with one line naming the problem', async () => {
  const configFile = writeGatewayConfig(
    dir,
    { HTTP: { Enabled: true, Listen: '127.0.0.1:0' }, UpstreamServer: { URL: `http://127.0.0.1:${upstreamPort}` }, Workers: 1 },
    'env-only.conf',
  );
  // minio is an optional dependency: hide it as an install without it would lack it.
  const hide = join(dir, 'hide-minio.js');
  await writeFile(
    hide,
    "const M = require('module'); const r = M._resolveFilename; M._resolveFilename = function (req, ...rest) { if (req === 'minio') { const e = new Error(\"Cannot find module 'minio'\"); e.code = 'MODULE_NOT_FOUND'; throw e; } return r.call(this, req, ...rest); };\n",
  );
  const env = {
    ...process.env,
    WORKERS: '',
    ARTIFACTS_PROXY_ENABLED: 'true',
    ARTIFACTS_PROXY_GATEWAY_URL: GATEWAY_URL,
    ARTIFACTS_PROXY_CACHE_ENABLED: 'true',
    ARTIFACTS_PROXY_CACHE_PATH: join(dir, 'cache-env'),
    ARTIFACTS_PROXY_CACHE_S3_ENABLED: 'true',
    ARTIFACTS_PROXY_CACHE_S3_ENDPOINT: bucket.endpoint,
    ARTIFACTS_PROXY_CACHE_S3_BUCKET: bucket.bucket,
    ARTIFACTS_PROXY_CACHE_S3_ACCESS_KEY_ID: bucket.accessKey,
    ARTIFACTS_PROXY_CACHE_S3_SECRET_ACCESS_KEY: bucket.secretKey,
  };
  const noMinio = await runToExit(configFile, { ...env, NODE_OPTIONS: `--require ${hide}` });
  assert.notEqual(noMinio.code, 0);
  const lines = noMinio.output.split('\n').filter((l) => /minio/.test(l));
  assert.equal(lines.length, 1, noMinio.output);
  assert.match(lines[0]!, /S3\.Enabled: needs the optional npm package minio \(npm install minio@8\), which is not installed/);
  const noBucket = await runToExit(configFile, { ...env, ARTIFACTS_PROXY_CACHE_S3_BUCKET: '' });
  assert.notEqual(noBucket.code, 0);
  assert.match(noBucket.output, /ArtifactsCache\.S3\.Bucket: required when S3 is enabled, got nothing/);
  outputs.push(noMinio.output, noBucket.output);
});

test('no secret in any log: S3 credentials, presigned queries, the link secret', () => {
  const text = outputs.join('\n');
  assert.ok(text.length > 0);
  for (const secret of [bucket.secretKey, bucket.accessKey, 'X-Amz-Signature', 'X-Amz-Credential', 'x-men-signature=', SECRET]) {
    assert.ok(!text.includes(secret), `${secret} appears in the gateway logs`);
  }
});
