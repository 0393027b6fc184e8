import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Readable } from 'node:stream';
import { WebSocketServer, WebSocket } from 'ws';
import { startGateway, type RunningGateway } from '../../lib/gateway';
import { captureLog } from '../support/capture-log';
import { testConfig } from '../support/gateway-config';
import { closeServer, listenOnFreePort } from '../support/listen';
import { connectProxy } from '../support/connect-proxy';

// The transparent proxy (docs/proxy.md) against real upstream servers on 127.0.0.1.

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  remotePort: number;
}

function request(
  port: number,
  opts: http.RequestOptions & { body?: Buffer | Readable },
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, agent: false, ...opts }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (opts.body instanceof Readable) opts.body.pipe(req);
    else req.end(opts.body);
  });
}

describe('pass-through proxy', () => {
  const seen: Seen[] = [];
  let upstreamConnections = 0;
  const upstream = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks),
        remotePort: req.socket.remotePort ?? 0,
      });
      if (req.url === '/api/devices/v1/authentication/auth_requests') {
        res.writeHead(200, { 'Content-Type': 'application/jwt' }).end('token.jwt.value');
      } else if (req.url?.startsWith('/status')) {
        res.writeHead(204, { 'X-Custom': 'kept' }).end();
      } else if (req.url?.startsWith('/echo')) {
        res.writeHead(201, { 'Content-Type': 'application/octet-stream', 'X-Upstream': 'yes' }).end(Buffer.concat(chunks));
      } else {
        res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"error":"not found","request_id":"x"}');
      }
    });
  });
  upstream.on('connection', () => upstreamConnections++);
  const wss = new WebSocketServer({ server: upstream, path: '/api/devices/v1/deviceconnect/connect' });
  let wsAuthorization: string | undefined;
  wss.on('connection', (socket, req) => {
    wsAuthorization = req.headers.authorization;
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
  });
  const capture = captureLog();
  let gateway: RunningGateway;
  let port: number;

  before(async () => {
    const upstreamPort = await listenOnFreePort(upstream);
    gateway = await startGateway(testConfig({ UpstreamServer: { URL: `http://127.0.0.1:${upstreamPort}` } }), capture.log);
    port = gateway.addresses.http!.port;
  });
  after(async () => {
    await gateway.close(1000);
    wss.close();
    await closeServer(upstream);
  });

  it('forwards every method with its sized body byte for byte, and the status and headers unchanged', async () => {
    for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
      const body = method === 'GET' ? Buffer.alloc(0) : randomBytes(1000);
      const res = await request(port, { method, path: `/echo/${method}?q=1`, body, headers: { 'Content-Length': body.length } });
      assert.equal(res.status, 201, method);
      assert.equal(res.headers['x-upstream'], 'yes');
      assert.deepEqual(res.body, body, method);
      const last = seen.at(-1)!;
      assert.equal(last.method, method);
      assert.equal(last.url, `/echo/${method}?q=1`);
    }
    const head = await request(port, { method: 'HEAD', path: '/status' });
    assert.equal(head.status, 204);
    assert.equal(head.headers['x-custom'], 'kept');
  });

  it('forwards the auth request exactly, trailing newline and Content-Length included', async () => {
    const body = Buffer.from(
      '{"id_data":"{\\"mac\\":\\"02:00:00:00:00:01\\"}","tenant_token":"","pubkey":"-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----\\n"}\n',
    );
    const res = await request(port, {
      method: 'POST',
      path: '/api/devices/v1/authentication/auth_requests',
      body,
      headers: { 'Content-Type': 'application/json', 'Content-Length': body.length, 'X-MEN-Signature': 'c2ln' },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'application/jwt');
    assert.equal(res.body.toString(), 'token.jwt.value');
    const last = seen.at(-1)!;
    assert.deepEqual(last.body, body);
    assert.equal(last.headers['content-length'], String(body.length));
    assert.equal(last.headers['x-men-signature'], 'c2ln');
  });

  it('streams chunked request bodies as chunked', async () => {
    const parts = [randomBytes(10), randomBytes(70_000), randomBytes(3)];
    const res = await request(port, { method: 'PUT', path: '/echo/chunked', body: Readable.from(parts) });
    assert.equal(res.status, 201);
    assert.deepEqual(res.body, Buffer.concat(parts));
    const last = seen.at(-1)!;
    assert.equal(last.headers['transfer-encoding'], 'chunked');
    assert.equal(last.headers['content-length'], undefined);
  });

  it("sends the upstream Host and its own X-Forwarded-* headers, dropping the device's", async () => {
    await request(port, {
      method: 'GET',
      path: '/status',
      headers: {
        Host: 'gateway.local:8080',
        'X-Forwarded-For': '6.6.6.6',
        'X-Forwarded-Proto': 'https',
        Forwarded: 'for=6.6.6.6',
        'X-Real-IP': '6.6.6.6',
      },
    });
    const last = seen.at(-1)!;
    assert.equal(last.headers.host, `127.0.0.1:${(upstream.address() as net.AddressInfo).port}`);
    assert.equal(last.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(last.headers['x-forwarded-proto'], 'http');
    assert.equal(last.headers['x-forwarded-host'], 'gateway.local:8080');
    assert.equal(last.headers.forwarded, undefined);
    assert.equal(last.headers['x-real-ip'], undefined);
  });

  it('keeps upstream connections alive across device requests', async () => {
    const before = upstreamConnections;
    for (let i = 0; i < 10; i++) await request(port, { method: 'GET', path: '/status' });
    assert.ok(upstreamConnections - before <= 1, `opened ${upstreamConnections - before} upstream connections for 10 sequential requests`);
  });

  it('answers the health probe itself', async () => {
    const count = seen.length;
    const res = await request(port, { method: 'GET', path: '/api/internal/v1/gateway/alive' });
    assert.equal(res.status, 204);
    assert.equal(seen.length, count, 'the probe must not reach upstream');
  });

  it('pipes WebSocket upgrades both ways with the device Authorization', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/api/devices/v1/deviceconnect/connect`, {
      headers: { Authorization: 'Bearer device-jwt' },
    });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const payload = randomBytes(100_000);
    const echoed = new Promise<Buffer>((resolve) => ws.once('message', (data) => resolve(data as Buffer)));
    ws.send(payload);
    assert.deepEqual(await echoed, payload);
    ws.send('text frame');
    const text = await new Promise<string>((resolve) => ws.once('message', (data) => resolve(String(data))));
    assert.equal(text, 'text frame');
    assert.equal(wsAuthorization, 'Bearer device-jwt');
    ws.close();
  });

  it('never logs Authorization values or query strings', async () => {
    await request(port, {
      method: 'GET',
      path: '/status?x-men-signature=SECRETSIG&token=abc',
      headers: { Authorization: 'Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.sig' },
    });
    const text = capture.text();
    assert.match(text, /path=\/status /);
    assert.doesNotMatch(text, /SECRETSIG|eyJhbGciOiJSUzI1NiJ9|token=abc/);
  });
});

describe('pass-through under failure', () => {
  it('answers 502 with a Mender JSON error when upstream is unreachable', async () => {
    const closed = http.createServer();
    const deadPort = await listenOnFreePort(closed);
    await closeServer(closed);
    const { log, lines } = captureLog();
    const gateway = await startGateway(testConfig({ UpstreamServer: { URL: `http://127.0.0.1:${deadPort}` } }), log);
    try {
      for (const id of ['req-42', 'req-43', 'req-44']) {
        const res = await request(gateway.addresses.http!.port, {
          method: 'GET',
          path: '/api/devices/v1/inventory/device/attributes',
          headers: { 'X-MEN-RequestID': id },
        });
        assert.equal(res.status, 502);
        assert.match(String(res.headers['content-type']), /application\/json/);
        const body = JSON.parse(res.body.toString());
        assert.equal(body.request_id, id);
        assert.match(body.error, /unreachable/);
      }
    } finally {
      await gateway.close(100);
    }
    // The repeats within the minute: counted, and written when the gateway closed.
    const errors = lines.filter((l) => /level=error msg="upstream server unreachable/.test(l));
    assert.equal(errors.length, 2, errors.join('\n'));
    assert.match(errors[0]!, /request_id=req-42/);
    assert.match(errors[1]!, /\(2 more in the last \d+ s; each is in the access log\).* repeated=2/);
    assert.doesNotMatch(errors[1]!, /request_id/);
  });

  it('answers 504 when upstream sends no response within UpstreamServer.Timeout', async () => {
    const slow = http.createServer(() => undefined);
    const slowPort = await listenOnFreePort(slow);
    const gateway = await startGateway(
      testConfig({ UpstreamServer: { URL: `http://127.0.0.1:${slowPort}`, Timeout: '300ms' } }),
      captureLog().log,
    );
    try {
      const res = await request(gateway.addresses.http!.port, { method: 'GET', path: '/slow' });
      assert.equal(res.status, 504);
      assert.match(JSON.parse(res.body.toString()).error, /timed out/);
    } finally {
      await gateway.close(100);
      await closeServer(slow);
    }
  });

  it('cuts the device response when upstream resets mid-body, instead of ending it cleanly', async () => {
    const resetting = http.createServer((_req, res) => {
      res.writeHead(200, { 'Content-Length': 1_000_000 });
      res.write(Buffer.alloc(10_000));
      setTimeout(() => res.socket?.destroy(), 50);
    });
    const resettingPort = await listenOnFreePort(resetting);
    const gateway = await startGateway(testConfig({ UpstreamServer: { URL: `http://127.0.0.1:${resettingPort}` } }), captureLog().log);
    try {
      await assert.rejects(request(gateway.addresses.http!.port, { method: 'GET', path: '/big' }), /aborted|socket hang up|ECONNRESET/);
    } finally {
      await gateway.close(100);
      await closeServer(resetting);
    }
  });

  it('aborts the upstream request when the device disconnects', { timeout: 10_000 }, async () => {
    let upstreamClosed: () => void;
    const closedUpstream = new Promise<void>((resolve) => (upstreamClosed = resolve));
    const hanging = http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Length': 10_000_000 });
      res.write(Buffer.alloc(1000));
      req.socket.on('close', () => upstreamClosed());
    });
    const hangingPort = await listenOnFreePort(hanging);
    const gateway = await startGateway(testConfig({ UpstreamServer: { URL: `http://127.0.0.1:${hangingPort}` } }), captureLog().log);
    try {
      const req = http.get({ host: '127.0.0.1', port: gateway.addresses.http!.port, path: '/download', agent: false });
      req.on('error', () => undefined);
      await new Promise<void>((resolve) => req.once('response', (res) => res.once('data', () => resolve())));
      req.destroy();
      const timeout = new Promise<string>((resolve) => setTimeout(() => resolve('timeout'), 2000).unref());
      assert.notEqual(
        await Promise.race([closedUpstream.then(() => 'closed'), timeout]),
        'timeout',
        'upstream request still open 2 s after the device left',
      );
    } finally {
      await gateway.close(100);
      await closeServer(hanging);
    }
  });

  it('lets a request in flight finish on shutdown, then stops listening', async () => {
    const slowish = http.createServer((_req, res) => setTimeout(() => res.writeHead(200).end('done'), 300));
    const slowishPort = await listenOnFreePort(slowish);
    const gateway = await startGateway(testConfig({ UpstreamServer: { URL: `http://127.0.0.1:${slowishPort}` } }), captureLog().log);
    const port = gateway.addresses.http!.port;
    const inFlight = request(port, { method: 'GET', path: '/work' });
    await new Promise((r) => setTimeout(r, 100));
    const closing = gateway.close(5000);
    const res = await inFlight;
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), 'done');
    await closing;
    await assert.rejects(request(port, { method: 'GET', path: '/work' }), /ECONNREFUSED/);
    await closeServer(slowish);
  });
});

describe('request smuggling regression (http-proxy deleteLength, CVE-2026-29057)', () => {
  it('forwards a chunked DELETE as chunked, so a body cannot smuggle a second request', { timeout: 10_000 }, async () => {
    // A deliberately lenient raw upstream that records the exact bytes it receives.
    const received: Buffer[] = [];
    const raw = net.createServer((socket) => {
      socket.on('data', (d) => {
        received.push(d);
        if (Buffer.concat(received).includes('0\r\n\r\n')) socket.end('HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n');
      });
    });
    const rawPort = await listenOnFreePort(raw);
    const gateway = await startGateway(testConfig({ UpstreamServer: { URL: `http://127.0.0.1:${rawPort}` } }), captureLog().log);
    try {
      const smuggled = 'GET /admin HTTP/1.1\r\nHost: x\r\n\r\n';
      for (const method of ['DELETE', 'OPTIONS']) {
        received.length = 0;
        // Node only chunks DELETE/OPTIONS bodies when asked to.
        const res = await request(gateway.addresses.http!.port, {
          method,
          path: '/api/devices/v1/x',
          headers: { 'Transfer-Encoding': 'chunked' },
          body: Readable.from([Buffer.from(smuggled)]),
        });
        assert.equal(res.status, 204);
        const text = Buffer.concat(received).toString('latin1');
        const headEnd = text.indexOf('\r\n\r\n');
        const head = text.slice(0, headEnd).toLowerCase();
        assert.match(head, /transfer-encoding: chunked/, method);
        assert.doesNotMatch(head, /content-length: 0/, method);
        // The smuggled text arrives inside a chunk, after a chunk-size line.
        assert.ok(text.slice(headEnd + 4).startsWith(smuggled.length.toString(16) + '\r\n'), method);
      }
    } finally {
      await gateway.close(100);
      await closeServer(raw);
    }
  });
});

describe('large bodies stream without being buffered', () => {
  it('moves 512 MiB each way with bounded memory', { timeout: 120_000 }, async () => {
    const size = 512 * 1024 * 1024;
    const chunk = randomBytes(64 * 1024);
    const source = () =>
      Readable.from(
        (function* () {
          for (let sent = 0; sent < size; sent += chunk.length) yield chunk;
        })(),
      );
    const sink = http.createServer((req, res) => {
      const hash = createHash('sha256');
      let n = 0;
      req.on('data', (c: Buffer) => {
        n += c.length;
        hash.update(c);
      });
      req.on('end', () => {
        res.writeHead(200, { 'Content-Length': size, 'X-Received': String(n), 'X-Sha': hash.digest('hex') });
        source().pipe(res);
      });
    });
    const sinkPort = await listenOnFreePort(sink);
    const gateway = await startGateway(testConfig({ UpstreamServer: { URL: `http://127.0.0.1:${sinkPort}` } }), captureLog('info').log);
    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    let peak = rssBefore;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 100);
    try {
      const expected = createHash('sha256');
      for (let sent = 0; sent < size; sent += chunk.length) expected.update(chunk);
      const digest = expected.digest('hex');
      const got = await new Promise<{ received: string; sha: string; bytes: number; sha2: string }>((resolve, reject) => {
        const req = http.request(
          { host: '127.0.0.1', port: gateway.addresses.http!.port, method: 'PUT', path: '/upload', agent: false },
          (res) => {
            const h = createHash('sha256');
            let bytes = 0;
            res.on('data', (c: Buffer) => {
              bytes += c.length;
              h.update(c);
            });
            res.on('end', () =>
              resolve({ received: String(res.headers['x-received']), sha: String(res.headers['x-sha']), bytes, sha2: h.digest('hex') }),
            );
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        source().pipe(req);
      });
      assert.equal(got.received, String(size));
      assert.equal(got.sha, digest);
      assert.equal(got.bytes, size);
      assert.equal(got.sha2, digest);
      // The test process holds client, gateway and upstream; 1 GiB moved must not show up.
      assert.ok(peak - rssBefore < 150 * 1024 * 1024, `RSS grew by ${Math.round((peak - rssBefore) / 1048576)} MiB`);
    } finally {
      clearInterval(sampler);
      await gateway.close(100);
      await closeServer(sink);
    }
  });
});

// Behind an outbound proxy (HTTP_PROXY) the pass-through dispatches through undici's ProxyAgent
// (CONNECT tunnels) instead of its Pool: the same guards must hold on that path.
describe('pass-through through an outbound proxy (CONNECT tunnel)', () => {
  const { server: proxy, tunnels } = connectProxy();
  let upstreamClosed: () => void = () => undefined;
  const seen: { method: string; headers: http.IncomingHttpHeaders; body: Buffer }[] = [];
  const upstream = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', headers: req.headers, body: Buffer.concat(chunks) });
      if (req.url === '/slow') return; // never answers
      if (req.url === '/cut') {
        res.writeHead(200, { 'Content-Length': 1_000_000 });
        res.write(Buffer.alloc(10_000));
        setTimeout(() => res.socket?.destroy(), 50);
        return;
      }
      if (req.url === '/hang') {
        res.writeHead(200, { 'Content-Length': 10_000_000 });
        res.write(Buffer.alloc(1000));
        req.socket.on('close', () => upstreamClosed());
        return;
      }
      res.writeHead(201, { 'X-Upstream': 'yes' }).end(Buffer.concat(chunks));
    });
  });
  let gateway: RunningGateway;
  let port: number;
  let upstreamPort: number;
  let proxyPort: number;
  const viaProxy = (timeout: string) =>
    startGateway(testConfig({ UpstreamServer: { URL: `http://127.0.0.1:${upstreamPort}`, Timeout: timeout } }), captureLog().log, {
      env: { HTTP_PROXY: `http://127.0.0.1:${proxyPort}` },
    });

  before(async () => {
    proxyPort = await listenOnFreePort(proxy);
    upstreamPort = await listenOnFreePort(upstream);
    gateway = await viaProxy('30s');
    port = gateway.addresses.http!.port;
  });
  after(async () => {
    await gateway.close(100);
    upstream.closeAllConnections();
    await closeServer(upstream);
    await closeServer(proxy);
  });

  it('forwards a sized body and a chunked DELETE through the tunnel, Host rewritten', async () => {
    const body = randomBytes(5000);
    const res = await request(port, {
      method: 'POST',
      path: '/echo',
      headers: { 'Content-Length': body.length, Host: 'gateway.local' },
      body,
    });
    assert.equal(res.status, 201);
    assert.equal(res.headers['x-upstream'], 'yes');
    assert.deepEqual(res.body, body);
    assert.equal(seen.at(-1)!.headers.host, `127.0.0.1:${upstreamPort}`);
    assert.equal(tunnels.at(-1), `127.0.0.1:${upstreamPort}`);

    const parts = [randomBytes(10), randomBytes(3000)];
    const del = await request(port, {
      method: 'DELETE',
      path: '/echo',
      headers: { 'Transfer-Encoding': 'chunked' },
      body: Readable.from(parts),
    });
    assert.equal(del.status, 201);
    assert.equal(seen.at(-1)!.headers['transfer-encoding'], 'chunked');
    assert.equal(seen.at(-1)!.headers['content-length'], undefined);
    assert.deepEqual(seen.at(-1)!.body, Buffer.concat(parts));
  });

  it('answers 504 JSON when upstream sends nothing within UpstreamServer.Timeout', async () => {
    const impatient = await viaProxy('300ms');
    try {
      const res = await request(impatient.addresses.http!.port, {
        method: 'GET',
        path: '/slow',
        headers: { 'X-MEN-RequestID': 'req-504' },
      });
      assert.equal(res.status, 504);
      assert.deepEqual(JSON.parse(res.body.toString()), { error: 'upstream server timed out', request_id: 'req-504' });
    } finally {
      await impatient.close(100);
    }
  });

  it('cuts the device response when upstream resets mid-body', async () => {
    await assert.rejects(request(port, { method: 'GET', path: '/cut' }), /aborted|socket hang up|ECONNRESET/);
  });

  it('closes the upstream request when the device leaves', { timeout: 10_000 }, async () => {
    const closed = new Promise<string>((resolve) => (upstreamClosed = () => resolve('closed')));
    const req = http.get({ host: '127.0.0.1', port, path: '/hang', agent: false });
    req.on('error', () => undefined);
    await new Promise<void>((resolve) => req.once('response', (res) => res.once('data', () => resolve())));
    req.destroy();
    const timeout = new Promise<string>((resolve) => setTimeout(() => resolve('timeout'), 2000).unref());
    assert.equal(await Promise.race([closed, timeout]), 'closed', 'upstream request still open 2 s after the device left');
  });
});
