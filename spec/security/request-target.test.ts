import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { startMenderServer, type MenderServer, type RecordedCall } from '../../fixtures/mender-server';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import type { GatewayConfig } from '../../lib/config/types';
import { startGateway, type GatewayOptions, type RunningGateway } from '../../lib/gateway';
import { captureLog } from '../support/capture-log';
import { makeDeviceCert, type DeviceCert } from '../support/device-certs';
import { postAuth, signedAuthBody, tlsAgent } from '../support/mtls-device';
import { makeTlsMaterial, type TlsMaterial } from '../support/tls-material';
import { ALIVE, AUTH, NEXT, INVENTORY, CONNECT } from '../support/device-api-paths';
import { mtlsTestConfig } from '../support/mtls-pair';

// A LAN host against the route table (docs/proxy.md, "Request targets"): spellings of a path
// that the gateway's routes would not recognise but the Mender server would (absolute-form,
// percent-encoding, dot segments, double slashes) and Upgrade requests to paths that are not
// deviceconnect. Each attack asserts what reached the emulator upstream: nothing that skipped
// its route. Then the connection timeouts: a slowloris, a stalled TLS handshake, a silent tunnel.
// The attacker holds a valid client certificate of its own (mTLS on, plain HTTP allowed so the
// route table is what stands in the way there).

const USER = { email: 'gateway@example.com', password: 'gw-secret-Pa55' };
const STATUS = '/api/devices/v1/deployments/device/deployments/0c6d4a49-2c7b-4b0f-a1a8-6f1f8a1b2c3d/status';

let dir: string;
let material: TlsMaterial;
let attacker: DeviceCert;
let store: S3Store;
let server: MenderServer;
let gateway: RunningGateway;
let token: string;

function gatewayConfig(): GatewayConfig {
  const config = mtlsTestConfig({ tls: material, upstreamUrl: server.url, user: USER, http: true, mtls: { AllowPlainHTTP: true } });
  config.Features.DeviceSystem = { ...config.Features.DeviceSystem, Enabled: true, SystemID: 'site-7' };
  config.Features.ReportJournal = { ...config.Features.ReportJournal, Enabled: true, Path: join(dir, 'journal') };
  return config;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'attack-target-'));
  material = makeTlsMaterial(dir);
  attacker = makeDeviceCert(dir, 'attacker', material.ca);
  store = await startS3Store();
  server = await startMenderServer({ store, users: [USER] });
  gateway = await startGateway(gatewayConfig(), captureLog().log);
  // The attacker's own device, admitted by its own certificate: a valid token of its own.
  const auth = await postAuth(
    `https://127.0.0.1:${gateway.addresses.https!.port}`,
    tlsAgent({ ca: material.ca.cert, cert: attacker.cert, key: attacker.key }),
    signedAuthBody({ mac: '02:00:00:0a:77:01' }, attacker.key),
  );
  assert.equal(auth.status, 200, auth.body);
  token = auth.body;
});
after(async () => {
  await gateway?.close(0);
  await server?.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

type Via = 'http' | 'https';

function connect(via: Via, port = via === 'http' ? gateway.addresses.http!.port : gateway.addresses.https!.port): net.Socket {
  return via === 'http'
    ? net.connect(port, '127.0.0.1')
    : tls.connect({
        host: '127.0.0.1',
        port,
        ca: readFileSync(material.ca.cert),
        cert: readFileSync(attacker.cert),
        key: readFileSync(attacker.key),
      });
}

/** One raw request on its own connection; resolves with the status and body once the gateway closes it (or after 5 s). */
function exchange(via: Via, raw: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(via);
    let text = '';
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      resolve({ status, body: text.slice(text.indexOf('\r\n\r\n') + 4) });
    };
    const timer = setTimeout(done, 5_000);
    socket.once(via === 'http' ? 'connect' : 'secureConnect', () => socket.write(raw));
    socket.setEncoding('latin1');
    socket.on('data', (t: string) => {
      text += t;
      // A whole answer with a Content-Length: no need to wait for the close.
      const length = /\r\ncontent-length: *(\d+)/i.exec(text)?.[1];
      const start = text.indexOf('\r\n\r\n');
      if (length !== undefined && start >= 0 && text.length - start - 4 >= Number(length)) done();
    });
    socket.on('close', done);
    socket.on('error', (err) => (text ? done() : reject(err)));
  });
}

const request = (method: string, target: string, headers: Record<string, string> = {}, body = '') =>
  `${method} ${target} HTTP/1.1\r\nHost: gw.example\r\nConnection: close\r\n${Object.entries({
    ...headers,
    ...(body ? { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) } : {}),
  })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n${body}`;

const upgrade = (target: string) =>
  request('GET', target, {
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Version': '13',
    'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
    Authorization: `Bearer ${token}`,
  }).replace('Connection: close\r\n', '');

/** Send `raw`; what the device got and every call that reached the emulator meanwhile. */
async function attack(via: Via, raw: string): Promise<{ status: number; body: string; upstream: RecordedCall[] }> {
  const from = server.calls.length;
  const answer = await exchange(via, raw);
  await new Promise((r) => setTimeout(r, 150));
  return { ...answer, upstream: server.calls.slice(from) };
}

/** Upstream saw only targets in the form the gateway routed them on. */
function assertOnlyRoutedTargets(upstream: RecordedCall[], what: string): void {
  const spelled = upstream.filter((c) => !c.path.startsWith('/') || /%|\/\/|\/\.\.?(?:[/?]|$)/.test(c.path.split('?')[0]));
  assert.deepEqual(
    spelled.map((c) => `${c.method} ${c.path} → ${c.status}`),
    [],
    `${what}: upstream got a target the route table never saw`,
  );
}

function assertRefused(r: { status: number; body: string; upstream: RecordedCall[] }, what: string, why: RegExp): void {
  assert.deepEqual(
    r.upstream.map((c) => `${c.method} ${c.path} → ${c.status}`),
    [],
    `${what}: reached upstream (device got ${r.status})`,
  );
  assert.equal(r.status, 400, `${what}: ${r.body}`);
  assert.match(JSON.parse(r.body).error, why);
}

describe('request targets', () => {
  it('attack: absolute-form targets to the auth, inventory and journal paths are refused, nothing upstream', async () => {
    const auth = signedAuthBody({ mac: '02:00:00:0a:77:02' }, attacker.key);
    const bearer = { Authorization: `Bearer ${token}` };
    const cases: [Via, string][] = [
      ['http', request('POST', `http://gw.example${AUTH}`, { 'X-MEN-Signature': auth.signature }, auth.raw.toString())],
      ['https', request('PATCH', `https://gw.example${INVENTORY}`, bearer, '[{"name":"mender_gateway_system_id","value":"forged"}]')],
      ['https', request('PUT', `http://anything${STATUS}`, bearer, '{"status":"failure"}')],
    ];
    for (const [via, raw] of cases) assertRefused(await attack(via, raw), raw.split('\r\n')[0], /absolute-form/);
  });

  it('attack: a percent-encoded auth_requests over plain HTTP meets the mTLS 403, not upstream', async () => {
    const auth = signedAuthBody({ mac: '02:00:00:0a:77:03' }, attacker.key);
    for (const path of ['/api/devices/v1/authentication/auth%5Frequests', '/api/devices/v1/authentic%61tion/auth_request%73']) {
      const r = await attack('http', request('POST', path, { 'X-MEN-Signature': auth.signature }, auth.raw.toString()));
      assert.deepEqual(
        r.upstream.map((c) => `${c.method} ${c.path}`),
        [],
        `${path}: reached upstream`,
      );
      assert.equal(r.status, 403, `${path}: ${r.body}`);
      assert.match(JSON.parse(r.body).error, /client certificate required/);
    }
  });

  it('attack: a percent-encoded next is routed as next, and upstream gets the path it was routed on', async () => {
    const query = '?artifact_name=release-1&device_type=qemux86-64';
    const r = await attack(
      'https',
      request('GET', `/api/devices/v1/deployments/device/deployments/ne%78t${query}`, { Authorization: `Bearer ${token}` }),
    );
    assertOnlyRoutedTargets(r.upstream, 'ne%78t');
    assert.deepEqual(
      r.upstream.map((c) => c.path),
      [`${NEXT}${query}`],
    );
    assert.ok(r.status === 204 || r.status === 200, `next answered ${r.status}: ${r.body}`);
  });

  it('attack: dot-segment, double-slash and encoded-slash spellings are refused with 400, nothing upstream', async () => {
    const auth = signedAuthBody({ mac: '02:00:00:0a:77:04' }, attacker.key);
    const signed = (path: string) => request('POST', path, { 'X-MEN-Signature': auth.signature }, auth.raw.toString());
    const inventory = (path: string) =>
      request('PATCH', path, { Authorization: `Bearer ${token}` }, '[{"name":"mender_gateway_system_id","value":"forged"}]');
    const cases: [Via, string, RegExp][] = [
      ['http', signed('/api/devices/v1/authentication/x/../auth_requests'), /dot segment/],
      ['http', signed('/api/devices/v1/authentication/./auth_requests'), /dot segment/],
      ['http', signed('/api/devices/v1/authentication/%2E%2E/authentication/auth_requests'), /dot segment/],
      ['http', signed('//api/devices/v1/authentication/auth_requests'), /empty segment/],
      ['http', signed('/api/devices/v1/authentication//auth_requests'), /empty segment/],
      ['http', signed('/api/devices/v1/authentication%2Fauth_requests'), /encoded slash/],
      ['http', signed('/api/devices/v1/authentication%5Cauth_requests'), /encoded slash or backslash/],
      ['https', inventory('/api/devices/v1/inventory/device/./attributes'), /dot segment/],
      ['https', inventory('/api/devices/v1/inventory/device/attributes/x/..'), /dot segment/],
      ['https', inventory('/api/devices/v1/inventory//device/attributes'), /empty segment/],
      [
        'https',
        request('PUT', `${STATUS.replace('/status', '/x/../status')}`, { Authorization: `Bearer ${token}` }, '{"status":"failure"}'),
        /dot segment/,
      ],
    ];
    for (const [via, raw, why] of cases) assertRefused(await attack(via, raw), raw.split('\r\n')[0], why);
  });

  it('an encoded unreserved character is decoded: the inventory route still extends it', async () => {
    const r = await attack(
      'https',
      request(
        'PATCH',
        '/api/devices/v1/inventory/device/attribute%73',
        { Authorization: `Bearer ${token}` },
        '[{"name":"rootfs","value":"a"}]',
      ),
    );
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(
      r.upstream.map((c) => c.path),
      [INVENTORY],
    );
    const device = server.devices().find((d) => d.identity.mac === '02:00:00:0a:77:01');
    assert.equal(JSON.stringify(device?.inventory).includes('site-7'), true, JSON.stringify(device?.inventory));
  });

  it('attack: Upgrade requests to the alive path and to deployments/next are refused, never tunnelled', async () => {
    for (const via of ['http', 'https'] as const) {
      for (const path of [ALIVE, NEXT, `${CONNECT}/../../../../internal/v1/gateway/alive`, `http://gw.example${CONNECT}`]) {
        const r = await attack(via, upgrade(path));
        assert.deepEqual(
          r.upstream.map((c) => `${c.method} ${c.path} → ${c.status}`),
          [],
          `${via} upgrade to ${path}: tunnelled upstream`,
        );
        assert.equal(r.status, 400, `${via} upgrade to ${path}: ${r.body}`);
      }
    }
  });

  it('deviceconnect still upgrades, and only with GET', async () => {
    const ws = new WebSocket(`wss://127.0.0.1:${gateway.addresses.https!.port}${CONNECT}`, {
      ca: readFileSync(material.ca.cert),
      cert: readFileSync(attacker.cert),
      key: readFileSync(attacker.key),
      headers: { Authorization: `Bearer ${token}` },
    });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    ws.close();
    const post = await attack('https', upgrade(CONNECT).replace(/^GET/, 'POST'));
    assert.deepEqual(post.upstream, []);
    assert.equal(post.status, 400);
  });
});

describe('connection timeouts', { concurrency: true }, () => {
  /** Connect and resolve with when (ms) and what the gateway closed the connection with. */
  function held(socket: net.Socket, trickle?: string): Promise<{ ms: number; text: string }> {
    const started = Date.now();
    let i = 0;
    const timer = trickle
      ? setInterval(() => {
          if (!socket.destroyed) socket.write(trickle[i++ % trickle.length]);
        }, 500)
      : undefined;
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (t: string) => (text += t));
    socket.on('error', () => undefined);
    return new Promise((resolve) => {
      const done = () => {
        clearInterval(timer);
        clearTimeout(limit);
        socket.destroy();
        resolve({ ms: Date.now() - started, text });
      };
      const limit = setTimeout(done, 30_000);
      socket.on('close', done);
    });
  }

  it('attack: a slowloris trickling its headers is cut at the headers timeout (15-20 s)', { timeout: 60_000 }, async () => {
    const socket = net.connect(gateway.addresses.http!.port, '127.0.0.1');
    socket.write(`GET ${ALIVE} HTTP/1.1\r\nHost: gw\r\n`);
    const { ms, text } = await held(socket, 'X-Slow: 1\r\n');
    assert.ok(ms >= 15_000 && ms < 25_000, `slowloris held ${ms} ms`);
    assert.match(text, /^HTTP\/1\.1 408 /);
  });

  it('attack: a TLS handshake never finished is cut at the handshake timeout (15 s)', { timeout: 60_000 }, async () => {
    const { ms } = await held(net.connect(gateway.addresses.https!.port, '127.0.0.1'));
    assert.ok(ms >= 12_000 && ms < 22_000, `stalled handshake held ${ms} ms`);
  });
});

describe('WebSocket tunnel idle timeout', () => {
  let short: RunningGateway;
  // Shortened for the test (the gateway's own is 120 s, docs/proxy.md).
  const options: GatewayOptions = { env: process.env, ...{ timeouts: { tunnelIdleMs: 1_000 } } };
  before(async () => {
    short = await startGateway(gatewayConfig(), captureLog().log, options);
  });
  after(() => short?.close(0));

  const open = async (): Promise<WebSocket> => {
    const ws = new WebSocket(`wss://127.0.0.1:${short.addresses.https!.port}${CONNECT}`, {
      ca: readFileSync(material.ca.cert),
      cert: readFileSync(attacker.cert),
      key: readFileSync(attacker.key),
      headers: { Authorization: `Bearer ${token}` },
    });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    return ws;
  };

  it('attack: a silent tunnel is closed after the idle timeout', async () => {
    const ws = await open();
    const started = Date.now();
    const closed = await Promise.race([
      new Promise<boolean>((r) => ws.once('close', () => r(true))),
      new Promise<boolean>((r) => setTimeout(() => r(false), 5_000)),
    ]);
    ws.terminate();
    assert.ok(closed, 'a silent tunnel was still open after 5 s (idle timeout 1 s)');
    assert.ok(Date.now() - started >= 900, `closed after ${Date.now() - started} ms, before the idle timeout`);
  });

  it('an active tunnel (a ping each way every 300 ms) is kept past the idle timeout', async () => {
    const ws = await open();
    let pongs = 0;
    ws.on('pong', () => pongs++);
    const pinger = setInterval(() => ws.ping(), 300);
    await new Promise((r) => setTimeout(r, 3_500));
    clearInterval(pinger);
    const state = ws.readyState;
    ws.terminate();
    assert.equal(state, WebSocket.OPEN, 'an active tunnel was closed');
    assert.ok(pongs >= 8, `${pongs} pongs came back`);
  });
});
