import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocketServer, WebSocket } from 'ws';
import { startGateway, type RunningGateway } from '../../lib/gateway';
import { captureLog } from '../support/capture-log';
import { testConfig } from '../support/gateway-config';
import { closeServer, listenOnFreePort } from '../support/listen';
import { connectProxy } from '../support/connect-proxy';

// A device's WebSocket through the gateway (lib/proxy/websocket-tunnel.ts): the
// upgrade as upstream sees it, both directions, either side leaving, a refused upgrade, and an
// upstream that cannot be reached or does not answer.

const CONNECT = '/api/devices/v1/deviceconnect/connect';

/** Send a raw upgrade request; resolves with everything the gateway sent until it closed. */
function rawUpgrade(port: number, path: string, extra = ''): Promise<{ text: string; closedMs: number }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: gw.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nX-MEN-RequestID: req-ws-1\r\n\r\n${extra}`,
      );
    });
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (t: string) => (text += t));
    socket.on('error', reject);
    socket.on('close', () => resolve({ text, closedMs: Date.now() - t0 }));
  });
}

const until = async (what: string, check: () => boolean, ms = 3000) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

/** Upstream's side: accept the upgrade, echo every message, keep the socket in `open` until it closes. */
function echoUpgrade(wss: WebSocketServer, open: Set<WebSocket>, req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
  wss.handleUpgrade(req, socket, head, (ws) => {
    open.add(ws);
    ws.on('close', () => open.delete(ws));
    ws.on('message', (data, binary) => ws.send(data, { binary }));
  });
}

describe('websocket tunnel', () => {
  const upstream = http.createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ noServer: true });
  let seen: http.IncomingMessage | undefined;
  const open = new Set<WebSocket>();
  let afterRefusal = '';
  upstream.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    seen = req;
    if (req.url?.endsWith('?refuse')) {
      // A 401 with a body, on a connection upstream keeps open: the gateway must end the device's.
      socket.on('data', (d: Buffer) => (afterRefusal += d.toString('latin1')));
      socket.on('end', () => socket.end());
      socket.write('HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n{"error":"unauthorized ws"}');
      return;
    }
    echoUpgrade(wss, open, req, socket, head);
  });
  let gateway: RunningGateway;
  let port: number;
  let upstreamPort: number;

  before(async () => {
    upstreamPort = await listenOnFreePort(upstream);
    gateway = await startGateway(testConfig({ UpstreamServer: { URL: `http://127.0.0.1:${upstreamPort}` } }), captureLog().log);
    port = gateway.addresses.http!.port;
  });
  after(async () => {
    await gateway.close(1000);
    await closeServer(upstream);
  });

  it('passes the upgrade with forwarded headers and upstream as Host, then frames both ways', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${CONNECT}`, {
      headers: { Authorization: 'Bearer device-jwt', 'X-Forwarded-For': '6.6.6.6' },
    });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    assert.equal(seen?.headers.authorization, 'Bearer device-jwt');
    assert.equal(seen?.headers.host, `127.0.0.1:${upstreamPort}`);
    assert.equal(seen?.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen?.headers['x-forwarded-proto'], 'http');
    assert.equal(seen?.headers.upgrade, 'websocket');
    for (const size of [10, 200_000]) {
      const payload = randomBytes(size);
      const echoed = new Promise<Buffer>((resolve) => ws.once('message', (d) => resolve(d as Buffer)));
      ws.send(payload);
      assert.deepEqual(await echoed, payload);
    }
    const pong = new Promise((resolve) => ws.once('pong', resolve));
    ws.ping('60');
    await pong;
    ws.terminate();
    await until('upstream to see the device leave', () => open.size === 0);
  });

  it('closes the device when upstream closes its side', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${CONNECT}`);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    await until('upstream socket', () => open.size === 1);
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    for (const s of open) s.close(1001, 'going away');
    assert.equal(await closed, 1001);
  });

  it('hands a refused upgrade to the device as upstream sent it and ends the connection there', async () => {
    const { text } = await rawUpgrade(
      port,
      `${CONNECT}?refuse`,
      'GET /api/devices/v1/inventory/device/attributes HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    assert.match(text, /^HTTP\/1\.1 401 Unauthorized\r\n/);
    assert.ok(text.endsWith('{"error":"unauthorized ws"}'), text);
    // What the device sent after its refused upgrade never reached upstream.
    assert.equal(afterRefusal, '');
  });
});

describe('websocket tunnel, upstream failing', () => {
  it('answers 502 with a Mender JSON error when upstream cannot be reached', async () => {
    const closed = http.createServer();
    const deadPort = await listenOnFreePort(closed);
    await closeServer(closed);
    const capture = captureLog();
    const gateway = await startGateway(testConfig({ UpstreamServer: { URL: `http://127.0.0.1:${deadPort}` } }), capture.log);
    try {
      const { text } = await rawUpgrade(gateway.addresses.http!.port, CONNECT);
      assert.match(text, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
      const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4));
      assert.equal(body.request_id, 'req-ws-1');
      assert.match(body.error, /unreachable: ECONNREFUSED/);
      assert.match(capture.text(), /websocket to upstream failed.*ECONNREFUSED/);
    } finally {
      await gateway.close(100);
    }
  });

  it('answers 502 when upstream closes the connection without a response head', async () => {
    const rude = net.createServer((s) => s.once('data', () => s.end('HTTP/1.1 101 Swi')));
    const rudePort = await listenOnFreePort(rude);
    const gateway = await startGateway(testConfig({ UpstreamServer: { URL: `http://127.0.0.1:${rudePort}` } }), captureLog().log);
    try {
      const { text, closedMs } = await rawUpgrade(gateway.addresses.http!.port, CONNECT);
      assert.match(text, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
      assert.match(text, /"upstream server unreachable: ECONNRESET"/);
      assert.ok(closedMs < 3000, `closed after ${closedMs} ms`);
    } finally {
      await gateway.close(100);
      rude.close();
    }
  });

  it('answers 504 when upstream sends no response head within UpstreamServer.Timeout', async () => {
    const silent = net.createServer((s) => s.on('data', () => undefined));
    const silentPort = await listenOnFreePort(silent);
    const gateway = await startGateway(
      testConfig({ UpstreamServer: { URL: `http://127.0.0.1:${silentPort}`, Timeout: '300ms' } }),
      captureLog().log,
    );
    try {
      const { text, closedMs } = await rawUpgrade(gateway.addresses.http!.port, CONNECT);
      assert.match(text, /^HTTP\/1\.1 504 Gateway Timeout\r\n/);
      assert.match(text, /"upstream server timed out"/);
      assert.ok(closedMs < 3000, `closed after ${closedMs} ms`);
    } finally {
      await gateway.close(100);
      silent.close();
    }
  });
});

// Behind an outbound proxy (HTTP_PROXY) the tunnel dials through a CONNECT tunnel first; the
// rest is the same path as a direct dial.
describe('websocket tunnel through an outbound proxy (CONNECT)', () => {
  const { server: proxy, tunnels } = connectProxy();
  const upstream = http.createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ noServer: true });
  let seen: http.IncomingMessage | undefined;
  const open = new Set<WebSocket>();
  upstream.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    seen = req;
    echoUpgrade(wss, open, req, socket, head);
  });
  let gateway: RunningGateway;
  let port: number;
  let upstreamPort: number;
  let proxyPort: number;

  before(async () => {
    proxyPort = await listenOnFreePort(proxy);
    upstreamPort = await listenOnFreePort(upstream);
    gateway = await startGateway(testConfig({ UpstreamServer: { URL: `http://127.0.0.1:${upstreamPort}` } }), captureLog().log, {
      env: { HTTP_PROXY: `http://dev%40ice:p%3Ass@127.0.0.1:${proxyPort}` },
    });
    port = gateway.addresses.http!.port;
  });
  after(async () => {
    await gateway.close(1000);
    await closeServer(upstream);
    await closeServer(proxy);
  });

  it('tunnels the upgrade with the proxy credentials, upstream as Host, frames both ways', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${CONNECT}`, { headers: { Authorization: 'Bearer device-jwt' } });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    assert.equal(tunnels.at(-1), `127.0.0.1:${upstreamPort} Basic ${Buffer.from('dev@ice:p:ss').toString('base64')}`);
    assert.equal(seen?.headers.host, `127.0.0.1:${upstreamPort}`);
    assert.equal(seen?.headers.authorization, 'Bearer device-jwt');
    assert.equal(seen?.headers['proxy-authorization'], undefined);
    const payload = randomBytes(200_000);
    const echoed = new Promise<Buffer>((resolve) => ws.once('message', (d) => resolve(d as Buffer)));
    ws.send(payload);
    assert.deepEqual(await echoed, payload);
    ws.terminate();
    await until('upstream to see the device leave', () => open.size === 0);
  });

  it('answers 502 JSON when the proxy refuses the tunnel, 504 when it never answers', async () => {
    const refusing = http.createServer();
    refusing.on('connect', (_req, socket: net.Socket) => socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n'));
    const silent = net.createServer((s) => s.on('data', () => undefined));
    const refusingPort = await listenOnFreePort(refusing);
    const silentPort = await listenOnFreePort(silent);
    const config = (timeout: string) => testConfig({ UpstreamServer: { URL: `http://127.0.0.1:${upstreamPort}`, Timeout: timeout } });
    const refused = await startGateway(config('30s'), captureLog().log, { env: { HTTP_PROXY: `http://127.0.0.1:${refusingPort}` } });
    const stuck = await startGateway(config('300ms'), captureLog().log, { env: { HTTP_PROXY: `http://127.0.0.1:${silentPort}` } });
    try {
      const a = await rawUpgrade(refused.addresses.http!.port, CONNECT);
      assert.match(a.text, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
      assert.match(a.text, /"request_id":"req-ws-1"/);
      const b = await rawUpgrade(stuck.addresses.http!.port, CONNECT);
      assert.match(b.text, /^HTTP\/1\.1 504 Gateway Timeout\r\n/);
      assert.ok(b.closedMs < 3000, `closed after ${b.closedMs} ms`);
    } finally {
      await Promise.all([refused.close(100), stuck.close(100)]);
      refusing.close();
      silent.close();
    }
  });
});
