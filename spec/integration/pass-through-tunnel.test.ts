import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Readable } from 'node:stream';
import { startGateway, type RunningGateway } from '../../lib/gateway';
import { captureLog } from '../support/capture-log';
import { testConfig } from '../support/gateway-config';
import { closeServer, listenOnFreePort } from '../support/listen';

// Behind an outbound proxy (HTTP_PROXY) the pass-through dials with http.request and the
// per-origin tunnel agent instead of undici's pool (lib/proxy/agent-dial.ts): the same guards
// must hold on that path.

function request(port: number, opts: http.RequestOptions & { body?: Buffer | Readable }): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
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

describe('pass-through through an outbound proxy (CONNECT tunnel)', () => {
  const tunnels: string[] = [];
  const proxy = http.createServer((_req, res) => res.writeHead(405).end());
  proxy.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    tunnels.push(req.url ?? '');
    const [host, port] = (req.url ?? '').split(':');
    const server = net.connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      server.write(head);
      server.pipe(client).pipe(server);
    });
    server.on('error', () => client.destroy());
    client.on('error', () => server.destroy());
  });
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
    startGateway(testConfig({ UpstreamServer: { URL: `http://127.0.0.1:${upstreamPort}`, Timeout: timeout } }), captureLog().log, { env: { HTTP_PROXY: `http://127.0.0.1:${proxyPort}` } });

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
    const res = await request(port, { method: 'POST', path: '/echo', headers: { 'Content-Length': body.length, Host: 'gateway.local' }, body });
    assert.equal(res.status, 201);
    assert.equal(res.headers['x-upstream'], 'yes');
    assert.deepEqual(res.body, body);
    assert.equal(seen.at(-1)!.headers.host, `127.0.0.1:${upstreamPort}`);
    assert.equal(tunnels.at(-1), `127.0.0.1:${upstreamPort}`);

    const parts = [randomBytes(10), randomBytes(3000)];
    const del = await request(port, { method: 'DELETE', path: '/echo', headers: { 'Transfer-Encoding': 'chunked' }, body: Readable.from(parts) });
    assert.equal(del.status, 201);
    assert.equal(seen.at(-1)!.headers['transfer-encoding'], 'chunked');
    assert.equal(seen.at(-1)!.headers['content-length'], undefined);
    assert.deepEqual(seen.at(-1)!.body, Buffer.concat(parts));
  });

  it('answers 504 JSON when upstream sends nothing within UpstreamServer.Timeout', async () => {
    const impatient = await viaProxy('300ms');
    try {
      const res = await request(impatient.addresses.http!.port, { method: 'GET', path: '/slow', headers: { 'X-MEN-RequestID': 'req-504' } });
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
