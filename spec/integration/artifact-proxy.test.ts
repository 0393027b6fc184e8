import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import { startGateway, type RunningGateway } from '../../lib/gateway';
import { ARTIFACT_LINK_PREFIX } from '../../lib/device-api';
import { captureLog } from '../support/capture-log';
import { testConfig } from '../support/gateway-config';
import { closeServer, listenOnFreePort } from '../support/listen';

// The artifact proxy with the cache off, in process: a scripted Mender server on
// 127.0.0.1 answers deployments/next in every form and encoding, with presigned links into
// the real S3 store; downloads go through the gateway's signed links.

const GATEWAY_URL = 'http://gateway.example.test:8080';
const SIZE = 300_000;
const KEY = 'artifact-one';
const SECRET = 'KDbQ+Z9asYtPdRQoakM5lGs6xgkWyNx4';

interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: Buffer | string;
}

type Res = { status: number; headers: http.IncomingHttpHeaders; body: Buffer };

function request(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('artifact proxy (cache off)', () => {
  let dir: string;
  let store: S3Store;
  let gateway: RunningGateway;
  let gwPort: number;
  let content: Buffer;
  let nextReply: () => Promise<Reply>;
  const upstreamSeen: { method: string; url: string; headers: http.IncomingHttpHeaders }[] = [];
  const upstream = http.createServer((req, res) => {
    upstreamSeen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    req.resume();
    req.on('end', async () => {
      const reply = await nextReply();
      res.writeHead(reply.status, reply.headers ?? {});
      res.end(reply.body);
    });
  });
  const logs = captureLog('debug');

  const instructions = (uri: string, extra: Record<string, unknown> = {}) => ({
    id: 'd1b4c2a0-0000-4000-8000-000000000001',
    artifact: {
      id: 'a7f0e1b2-0000-4000-8000-000000000002',
      artifact_name: 'release-1',
      source: { uri, expire: '2099-01-02T03:04:05.123456789Z', method: 'GET' },
      device_types_compatible: ['test-device', 'other'],
    },
    ...extra,
  });
  const json = (doc: unknown, encode: (b: Buffer) => Buffer = (b) => b, encoding?: string): Reply => ({
    status: 200,
    headers: { 'content-type': 'application/json; charset=utf-8', ...(encoding ? { 'content-encoding': encoding } : {}) },
    body: encode(Buffer.from(JSON.stringify(doc))),
  });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'artifact-proxy-'));
    content = Buffer.alloc(SIZE);
    for (let i = 0; i < SIZE; i++) content[i] = (i * 31 + (i >> 8)) & 0xff;
    await writeFile(join(dir, 'a.mender'), content);
    store = await startS3Store();
    await store.putObject(KEY, join(dir, 'a.mender'));
    const upstreamPort = await listenOnFreePort(upstream);
    gateway = await startGateway(
      testConfig({
        UpstreamServer: { URL: `http://127.0.0.1:${upstreamPort}`, Timeout: '5s' },
        Features: {
          ArtifactsProxy: {
            Enabled: true,
            GatewayURL: GATEWAY_URL,
            DomainWhitelist: ['127.0.0.1'],
            ArtifactsCache: { Enabled: false, Path: dir, SignatureSecret: SECRET, LinkExpireDuration: '1h' },
          },
        },
      }),
      logs.log,
    );
    gwPort = gateway.addresses.http!.port;
  });

  after(async () => {
    await gateway?.close(1000);
    await closeServer(upstream);
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** The rewritten link, as a path on the gateway's real port. */
  function linkPath(body: Buffer): string {
    const uri: string = JSON.parse(body.toString()).artifact.source.uri;
    assert.ok(uri.startsWith(GATEWAY_URL + ARTIFACT_LINK_PREFIX), uri);
    return uri.slice(GATEWAY_URL.length);
  }

  async function freshLink(): Promise<string> {
    const presigned = await store.presignGet(KEY, 3600);
    nextReply = async () => json(instructions(presigned));
    const res = await request(
      gwPort,
      'POST',
      '/api/devices/v1/deployments/device/deployments/next',
      { 'content-type': 'application/json' },
      '{}',
    );
    assert.equal(res.status, 200);
    return linkPath(res.body);
  }

  const forms: [string, string, string][] = [
    [
      'POST',
      '/api/devices/v2/deployments/device/deployments/next',
      '{"device_provides":{"artifact_name":"a","device_type":"test-device"}}',
    ],
    ['POST', '/api/devices/v1/deployments/device/deployments/next', '{"artifact_name":"a","device_type":"test-device"}'],
    ['GET', '/api/devices/v1/deployments/device/deployments/next?artifact_name=a&device_type=test-device', ''],
  ];
  const encodings: [string, ((b: Buffer) => Buffer) | undefined][] = [
    ['identity', undefined],
    ['gzip', (b) => zlib.gzipSync(b)],
    ['deflate', (b) => zlib.deflateSync(b)],
    ['br', (b) => zlib.brotliCompressSync(b)],
  ];

  for (const [method, path, body] of forms) {
    for (const [encoding, encode] of encodings) {
      it(`${method} ${path.split('?')[0].replace('/deployments/device/deployments', '…')} (${encoding}): only the link changes; the download is byte-exact`, async () => {
        const presigned = await store.presignGet(KEY, 3600);
        const doc = instructions(presigned, { update_control_map: { id: 'x', priority: 1, states: {} } });
        nextReply = async () => json(doc, encode, encode ? encoding : undefined);
        const res = await request(
          gwPort,
          method,
          path,
          { 'content-type': 'application/json', 'accept-encoding': 'gzip' },
          body || undefined,
        );
        assert.equal(res.status, 200);
        assert.equal(res.headers['content-encoding'], undefined);
        assert.equal(Number(res.headers['content-length']), res.body.length);
        assert.equal(upstreamSeen.at(-1)!.url, path);
        const rewritten = JSON.parse(res.body.toString());
        const link = rewritten.artifact.source.uri as string;
        assert.ok(link.startsWith(GATEWAY_URL + ARTIFACT_LINK_PREFIX));
        assert.ok(!res.body.toString().includes('X-Amz-Signature'), 'the presigned URL leaked into the rewritten instructions in clear');
        assert.match(rewritten.artifact.source.expire, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
        // everything else exactly as the server sent it
        const expected = structuredClone(doc);
        expected.artifact.source.uri = link;
        expected.artifact.source.expire = rewritten.artifact.source.expire;
        assert.deepEqual(rewritten, expected);
        assert.deepEqual(Object.keys(rewritten), Object.keys(doc));

        const before = store.stats(KEY).bytesServed;
        const dl = await request(gwPort, 'GET', linkPath(res.body), { 'accept-encoding': 'gzip' });
        assert.equal(dl.status, 200);
        assert.equal(dl.headers['content-length'], String(SIZE));
        assert.equal(dl.headers['content-encoding'], undefined);
        assert.equal(createHash('sha256').update(dl.body).digest('hex'), createHash('sha256').update(content).digest('hex'));
        assert.equal(store.stats(KEY).bytesServed - before, SIZE);
      });
    }
  }

  for (const [status, headers, body] of [
    [204, {}, undefined],
    [404, { 'content-type': 'application/json' }, '{"error":"not found","request_id":"r1"}'],
    [401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer' }, '{"error":"unauthorized","request_id":"r2"}'],
    [409, { 'content-type': 'application/json' }, '{"error":"conflict","request_id":"r3"}'],
    [500, { 'content-type': 'application/json', 'x-upstream': 'yes' }, '{"error":"internal","request_id":"r4"}'],
  ] as [number, Record<string, string>, string | undefined][]) {
    it(`upstream ${status} passes through untouched`, async () => {
      nextReply = async () => ({ status, headers: { ...headers, 'x-men-requestid': `rid-${status}` }, body });
      const res = await request(
        gwPort,
        'POST',
        '/api/devices/v2/deployments/device/deployments/next',
        { 'content-type': 'application/json' },
        '{}',
      );
      assert.equal(res.status, status);
      assert.equal(res.body.toString(), body ?? '');
      assert.equal(res.headers['x-men-requestid'], `rid-${status}`);
      for (const [k, v] of Object.entries(headers)) assert.equal(res.headers[k], v);
    });
  }

  it('a gzip 200 that is not JSON passes through untouched', async () => {
    nextReply = async () => ({
      status: 200,
      headers: { 'content-type': 'text/plain', 'content-encoding': 'gzip' },
      body: zlib.gzipSync('hello'),
    });
    const res = await request(gwPort, 'GET', '/api/devices/v1/deployments/device/deployments/next?x=1');
    assert.equal(res.headers['content-encoding'], 'gzip');
    assert.equal(zlib.gunzipSync(res.body).toString(), 'hello');
  });

  it('a host not on the whitelist: instructions unchanged, the product warning logged', async () => {
    const doc = instructions('https://evil-s3.example.net/bucket/key?X-Amz-Signature=abc');
    nextReply = async () => json(doc);
    const res = await request(
      gwPort,
      'POST',
      '/api/devices/v1/deployments/device/deployments/next',
      { 'content-type': 'application/json' },
      '{}',
    );
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.body.toString()), doc);
    assert.match(logs.text(), /level=warning msg="evil-s3\.example\.net returned by Mender server is not whitelisted"/);
  });

  it('instructions larger than 1 MiB → 502 JSON, and the gateway keeps working', async () => {
    const big = instructions(await store.presignGet(KEY, 3600), { padding: 'x'.repeat(1024 * 1024) });
    nextReply = async () => json(big, (b) => zlib.gzipSync(b), 'gzip'); // small on the wire, large decoded
    const res = await request(gwPort, 'POST', '/api/devices/v1/deployments/device/deployments/next', {}, '{}');
    assert.equal(res.status, 502);
    assert.ok(typeof JSON.parse(res.body.toString()).request_id === 'string');
    assert.equal((await freshLink()).startsWith(ARTIFACT_LINK_PREFIX), true);
  });

  for (const [name, reply] of [
    ['malformed JSON', { status: 200, headers: { 'content-type': 'application/json' }, body: '{"id": "x", "artifact": ' }],
    [
      'a broken gzip stream',
      { status: 200, headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: Buffer.from('not gzip at all') },
    ],
    ['an unknown encoding', { status: 200, headers: { 'content-type': 'application/json', 'content-encoding': 'zstd' }, body: '{}' }],
  ] as [string, Reply][]) {
    it(`${name} → 502 JSON`, async () => {
      nextReply = async () => reply;
      const res = await request(gwPort, 'POST', '/api/devices/v2/deployments/device/deployments/next', {}, '{}');
      assert.equal(res.status, 502);
      assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
      assert.ok('error' in JSON.parse(res.body.toString()));
    });
  }

  it('HEAD: 200 with the full Content-Length and no body', async () => {
    const res = await request(gwPort, 'HEAD', await freshLink());
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-length'], String(SIZE));
    assert.equal(res.headers['accept-ranges'], 'bytes');
    assert.equal(res.body.length, 0);
  });

  for (const [range, start, end] of [
    ['bytes=0-', 0, SIZE - 1],
    ['bytes=1-', 1, SIZE - 1],
    ['bytes=150000-', 150000, SIZE - 1],
    ['bytes=299999-', 299999, SIZE - 1],
    ['bytes=100-199', 100, 199],
    ['bytes=-500', SIZE - 500, SIZE - 1],
    ['bytes=250000-999999', 250000, SIZE - 1],
  ] as [string, number, number][]) {
    it(`Range ${range} → 206 bytes ${start}-${end}/${SIZE}, exact bytes`, async () => {
      const link = await freshLink();
      const res = await request(gwPort, 'GET', link, { range });
      assert.equal(res.status, 206);
      assert.equal(res.headers['content-range'], `bytes ${start}-${end}/${SIZE}`);
      assert.equal(res.headers['content-length'], String(end - start + 1));
      assert.ok(res.body.equals(content.subarray(start, end + 1)));
      assert.equal(store.requestLog.at(-1)!.range, range, 'the range was not forwarded to the origin');
    });
  }

  it('Range past the end → 416 JSON (S3 states no size, so neither do we)', async () => {
    const res = await request(gwPort, 'GET', await freshLink(), { range: `bytes=${SIZE}-` });
    assert.equal(res.status, 416);
    assert.ok('error' in JSON.parse(res.body.toString()));
  });

  it('a malformed or multi Range is ignored: 200 whole', async () => {
    for (const range of ['bytes=abc-', 'bytes=0-1,5-6']) {
      const res = await request(gwPort, 'GET', await freshLink(), { range });
      assert.equal(res.status, 200, range);
      assert.equal(res.body.length, SIZE);
    }
  });

  it('forged, truncated, expired links: 403 JSON; path tricks: 400 JSON before any route; nothing fetched', async () => {
    const link = await freshLink();
    const [path, query] = link.split('?');
    const requestsBefore = store.requestLog.length;
    // Forged: the signature's first character changed, whatever it was (a fixed 'A' left a
    // signature that began with 'A' as it was, one link in 64).
    const forged = query.replace(/x-men-signature=(.)/, (_m, c: string) => `x-men-signature=${c === 'A' ? 'B' : 'A'}`);
    const cases: [string, string, number][] = [
      ['forged', `${path}?${forged}`, 403],
      ['truncated', link.slice(0, link.length - 10), 403],
      ['no query', path, 403],
      ['expired', `${path}?x-men-expire=2000-01-01T00%3A00%3A00Z&${query.split('&')[1]}`, 403],
      // Refused by the request-target check (lib/http/request-target.ts) before the link route.
      ['dot-dot', `${ARTIFACT_LINK_PREFIX}..%2F..%2Fapi?${query}`, 400],
      ['encoded NUL', `${path}%00?${query}`, 400],
    ];
    for (const [name, target, status] of cases) {
      const res = await request(gwPort, 'GET', target);
      assert.equal(res.status, status, name);
      assert.equal(JSON.parse(res.body.toString()).error !== undefined, true, name);
    }
    assert.equal(store.requestLog.length, requestsBefore, 'a refused link reached the store');
  });

  it('origin errors: an expired presigned URL is a 502, a missing object a 404 (as with the cache on), the reason in the log', async () => {
    const expiredUrl = await store.presignGet(KEY, 1);
    const missing = await store.presignGet('no-such-object', 3600);
    for (const [uri, why, status] of [
      [expiredUrl, /refused the presigned URL \(403\)/, 502],
      [missing, /not found at the origin \(404\)/, 404],
    ] as [string, RegExp, number][]) {
      nextReply = async () => json(instructions(uri));
      const res = await request(gwPort, 'POST', '/api/devices/v1/deployments/device/deployments/next', {}, '{}');
      if (uri === expiredUrl) await new Promise((r) => setTimeout(r, 2100));
      const dl = await request(gwPort, 'GET', linkPath(res.body));
      assert.equal(dl.status, status);
      assert.equal(typeof JSON.parse(dl.body.toString()).error, 'string');
      assert.match(logs.text(), why);
    }
    assert.doesNotMatch(logs.text(), /X-Amz-Signature=[0-9a-f]/i, 'a presigned signature reached the log');
  });

  it('origin unreachable → 502', async () => {
    const dead = http.createServer();
    const port = await listenOnFreePort(dead);
    await closeServer(dead);
    nextReply = async () => json(instructions(`http://127.0.0.1:${port}/bucket/key?X-Amz-Signature=x`));
    const res = await request(gwPort, 'POST', '/api/devices/v1/deployments/device/deployments/next', {}, '{}');
    const dl = await request(gwPort, 'GET', linkPath(res.body));
    assert.equal(dl.status, 502);
  });
});
