import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { startMenderServer, type MenderServer } from '../../fixtures/mender-server';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import { reloadConfig } from '../../lib/admin/reload-config';
import { loadConfig } from '../../lib/config/load-config';
import type { GatewayConfig } from '../../lib/config/types';
import { startGateway, type GatewayOptions, type RunningGateway } from '../../lib/gateway';
import { captureLog } from '../support/capture-log';
import { makeDeviceCert, type DeviceCert } from '../support/device-certs';
import { sendRaw, type RawOutcome } from '../support/fuzz-raw-http';
import { testConfig } from '../support/gateway-config';
import { writeGatewayConfig } from '../support/gateway-process';
import { postAuth, signedAuthBody, tlsAgent } from '../support/mtls-device';
import { makeKey, makeTlsMaterial, type TlsMaterial } from '../support/tls-material';
import { until } from '../support/worker-gateway';
import { ALIVE, AUTH, NEXT, INVENTORY, CONNECT } from '../support/device-api-paths';

// A host on the site's LAN against the gateway's listeners. The status page and /api/status name
// every device, its address and deployments: they must not answer a LAN peer unless the operator
// opts in. With mTLS on, the plain HTTP listener must not carry a device whose certificate was
// revoked: it serves the health probe only.
//
// A LAN peer, on loopback-only test traffic: the metrics listener binds every interface and the
// test connects from this machine's own non-loopback address (the kernel keeps the packets on
// the host, yet the gateway sees a peer that is not 127/8 or ::1). A machine without such an
// address connects from 127.0.0.2 instead, and the gateway is told (its isLocalPeer option) that
// only 127.0.0.1 and ::1 are local; the loopback rule itself is tested in
// spec/unit/peer-address.test.ts. (The file imports nothing new of lib/, so that it also runs
// against the code before these rules, where each attack must fail.)

const STATUS = '/api/devices/v1/deployments/device/deployments/dep-1/status';
const USER = { email: 'gateway@example.com', password: 'gw-secret-Pa55' };

/** This machine's first non-loopback address, or undefined. */
function ownLanAddress(): { address: string; family: 'IPv4' | 'IPv6' } | undefined {
  const all = Object.values(networkInterfaces()).flatMap((list) => list ?? []);
  const v4 = all.find((a) => !a.internal && a.family === 'IPv4');
  if (v4) return { address: v4.address, family: 'IPv4' };
  const v6 = all.find((a) => !a.internal && a.family === 'IPv6' && !a.address.toLowerCase().startsWith('fe80'));
  return v6 && { address: v6.address, family: 'IPv6' };
}

const own = ownLanAddress();
/** Where the "LAN host" connects from, and how the gateway is told what is local. */
const lan: { peer: string; listen: string; options: GatewayOptions & { isLocalPeer?: (address: string | undefined) => boolean } } = own
  ? { peer: own.address, listen: own.family === 'IPv4' ? '0.0.0.0:0' : '[::]:0', options: {} }
  : {
      peer: '127.0.0.2',
      listen: '0.0.0.0:0',
      options: { isLocalPeer: (a) => a === '127.0.0.1' || a === '::ffff:127.0.0.1' || a === '::1' },
    };
const loopback = own?.family === 'IPv6' ? '::1' : '127.0.0.1';

type Reply = { status: number; headers: http.IncomingHttpHeaders; body: string };

/** One request from `from` (a local address the socket binds to) to host:port. */
function call(
  host: string,
  port: number,
  method: string,
  path: string,
  opts: { from?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path, headers: opts.headers, localAddress: opts.from, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

const jsonError = (body: string | Buffer): { error: string; request_id: string } => JSON.parse(String(body));

let dir: string;
let store: S3Store;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gw-private-'));
  store = await startS3Store();
});
after(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the status page on the metrics listener', () => {
  let server: MenderServer;
  let gateway: RunningGateway;
  let configFile: string;
  let current: Readonly<GatewayConfig>;
  let deviceId: string;
  const captured = captureLog('debug');
  const adminPort = () => gateway.admin!.address()!.port;
  const fromLan = (method: string, path: string) => call(lan.peer, adminPort(), method, path, { from: lan.peer });

  /** The file an operator writes; the rest are defaults. */
  const fileWith = (allowRemote: boolean) => ({
    HTTP: { Enabled: true, Listen: '127.0.0.1:0' },
    UpstreamServer: { URL: server.url },
    Metrics: { Enabled: true, Listen: lan.listen, StatusPageAllowRemote: allowRemote },
    Workers: 1,
  });
  /** SIGHUP as the CLI does it: the file is read again and handed to the running gateway. */
  const sighup = (allowRemote: boolean): void => {
    writeFileSync(configFile, JSON.stringify(fileWith(allowRemote)));
    current = reloadConfig(current, gateway, { file: configFile, explicit: true, env: {}, levelFlag: 'debug' }, captured.log);
  };

  before(async () => {
    server = await startMenderServer({ store, autoAccept: true });
    configFile = writeGatewayConfig(dir, fileWith(false), 'status.conf');
    current = loadConfig({ file: configFile, explicit: true, env: {} }).config;
    gateway = await startGateway(current, captured.log, lan.options);
    await gateway.admin!.ready;
    // A device authenticates and polls through the gateway: the page now names it.
    const port = gateway.addresses.http!.port;
    const identity = { mac: '02:00:00:25:00:01' };
    const body = signedAuthBody(identity, makeKey(dir, 'status-device'));
    const auth = await call('127.0.0.1', port, 'POST', AUTH, {
      headers: { 'Content-Type': 'application/json', 'X-MEN-Signature': body.signature },
      body: body.raw.toString(),
    });
    assert.equal(auth.status, 200, auth.body);
    const poll = await call('127.0.0.1', port, 'GET', `${NEXT}?artifact_name=a&device_type=t`, {
      headers: { Authorization: `Bearer ${auth.body}` },
    });
    assert.equal(poll.status, 204, poll.body);
    deviceId = server.deviceByIdentity(identity)!.id;
  });
  after(async () => {
    await gateway?.close(0);
    await server?.close();
  });

  it('attack: a LAN host reads the status page and /api/status: 403 JSON naming the key, no device id', async () => {
    // From loopback the device is there: its absence below is the refusal, not an empty board.
    const local = await call(loopback, adminPort(), 'GET', '/api/status');
    assert.equal(local.status, 200);
    assert.ok(local.body.includes(deviceId), 'the status JSON names the device on loopback');

    for (const path of [
      '/api/status',
      '/api/status/history',
      '/',
      '/status',
      '/status/status.js',
      '/status/status.css',
      '/status/uPlot.iife.min.js',
      '/api/status?x=1',
    ]) {
      const reply = await fromLan('GET', path);
      assert.equal(reply.status, 403, `${path}: ${reply.body.slice(0, 200)}`);
      assert.match(String(reply.headers['content-type']), /^application\/json/, path);
      const json = jsonError(reply.body);
      assert.match(json.error, /loopback peers only/, path);
      assert.match(json.error, /Metrics\.StatusPageAllowRemote/, path);
      assert.ok(!reply.body.includes(deviceId), `${path}: no device id`);
      assert.ok(!reply.body.includes(server.url), `${path}: no upstream URL`);
    }
    assert.equal((await fromLan('HEAD', '/api/status')).status, 403);
    assert.match(captured.text(), /level=warning msg="status page refused to a peer off loopback"/);
  });

  it('/metrics still answers a LAN host, and names no device', async () => {
    const metrics = await fromLan('GET', '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /^mender_gateway_http_requests_total\{method="GET",code="204",route="deployments-next-v1"\} 1$/m);
    assert.ok(!metrics.body.includes(deviceId), 'no device id in any metric');
    assert.ok(!metrics.body.includes('127.0.0.1') && !metrics.body.includes(lan.peer), 'no address in any metric');
  });

  it('with StatusPageAllowRemote (a reload, no restart) the LAN host gets the page, and the gateway warns', async () => {
    const linesBefore = captured.lines.length;
    sighup(true);
    const reply = await fromLan('GET', '/api/status');
    assert.equal(reply.status, 200);
    assert.ok(reply.body.includes(deviceId));
    assert.equal((await fromLan('GET', '/')).status, 200);
    const logged = captured.lines.slice(linesBefore).join('');
    assert.doesNotMatch(logged, /take effect only after a restart/);
    const warnings = logged.split('\n').filter((l) => /level=warning msg="Metrics\.StatusPageAllowRemote: the status page/.test(l));
    assert.equal(warnings.length, 1, logged);
    assert.ok(warnings[0].includes(lan.listen), warnings[0]);
  });

  it('attack: after a reload turns StatusPageAllowRemote off, the LAN host is refused at once', async () => {
    sighup(false);
    const reply = await fromLan('GET', '/api/status');
    assert.equal(reply.status, 403);
    assert.ok(!reply.body.includes(deviceId));
  });

  it('warns at start when the page is open to the LAN, and not when the listener is loopback only', async () => {
    for (const [listen, warns] of [
      [lan.listen, true],
      ['127.0.0.1:0', false],
    ] as const) {
      const log = captureLog('info');
      const other = await startGateway(
        testConfig({ UpstreamServer: { URL: server.url }, Metrics: { Enabled: true, Listen: listen, StatusPageAllowRemote: true } }),
        log.log,
        lan.options,
      );
      try {
        await other.admin!.ready;
        const lines = log.lines.filter((l) => /msg="Metrics\.StatusPageAllowRemote: /.test(l));
        assert.equal(lines.length, warns ? 1 : 0, `${listen}: ${log.text()}`);
      } finally {
        await other.close(0);
      }
    }
  });
});

describe('the plain HTTP listener with mTLS on', () => {
  let tls: TlsMaterial;
  let device: DeviceCert;
  let server: MenderServer;
  let gateway: RunningGateway;
  let token: string;
  let blocklist: string;
  const captured = captureLog('debug');

  const mtlsConfig = (allowPlainHttp: boolean): GatewayConfig =>
    testConfig({
      HTTP: { Enabled: true },
      HTTPS: { Enabled: true, ServerCertificate: tls.server.cert, ServerKey: tls.server.key },
      UpstreamServer: { URL: server.url },
      Metrics: { Enabled: true, Listen: '127.0.0.1:0' },
      Features: {
        mTLS: {
          Enabled: true,
          CACertificate: tls.ca.cert,
          BlacklistPath: blocklist,
          MenderUsername: USER.email,
          MenderPassword: USER.password,
          AllowPlainHTTP: allowPlainHttp,
        },
      },
    });

  /** The device's calls, byte for byte as a LAN host sends them, with the device's token. */
  const deviceCalls = (): [string, string][] => {
    const auth = `Authorization: Bearer ${token}\r\n`;
    const withBody = (head: string, body: string) =>
      `${head}Host: gw\r\n${auth}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    return [
      ['deployments/next', withBody(`POST ${NEXT} HTTP/1.1\r\n`, '{"device_type":"t","artifact_name":"a"}')],
      ['status report', withBody(`PUT ${STATUS} HTTP/1.1\r\n`, '{"status":"failure"}')],
      ['inventory', withBody(`PATCH ${INVENTORY} HTTP/1.1\r\n`, '[{"name":"site","value":"lan"}]')],
      ['auth request', withBody(`POST ${AUTH} HTTP/1.1\r\nX-MEN-Signature: AAAA\r\n`, '{"id_data":"{\\"mac\\":\\"x\\"}"}')],
    ];
  };
  const upgradeRequest = (path: string) =>
    `GET ${path} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${token}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;
  const send = (port: number, raw: string): Promise<RawOutcome> => sendRaw(port, Buffer.from(raw), { timeoutMs: 10_000, halfClose: false });
  const assertRefused = (what: string, o: RawOutcome): void => {
    assert.equal(o.kind, 'response', `${what}: ${o.detail}`);
    assert.equal(o.status, 403, `${what}: ${o.body?.toString()}`);
    assert.match(String(o.headers?.['content-type']), /^application\/json/, what);
    const json = jsonError(o.body!);
    assert.match(json.error, /^mTLS is enabled: use HTTPS with a client certificate/, what);
    assert.match(json.error, /Features\.mTLS\.AllowPlainHTTP/, what);
    assert.ok(json.request_id, what);
  };

  before(async () => {
    tls = makeTlsMaterial(mkdtempSync(join(dir, 'tls-')));
    device = makeDeviceCert(dir, 'lan-device', tls.ca);
    blocklist = join(dir, 'blocklist.txt');
    writeFileSync(blocklist, '# revoked devices\n');
    server = await startMenderServer({ store, users: [USER] });
    gateway = await startGateway(mtlsConfig(false), captured.log);
    // The device gets a real token over HTTPS with its certificate; then its certificate is revoked.
    const agent = tlsAgent({ ca: tls.ca.cert, cert: device.cert, key: device.key });
    const body = signedAuthBody({ mac: '02:00:00:25:01:01' }, device.key);
    const url = `https://127.0.0.1:${gateway.addresses.https!.port}`;
    const auth = await postAuth(url, agent, body);
    assert.equal(auth.status, 200, auth.body);
    token = auth.body;
    writeFileSync(blocklist, `# revoked devices\n${device.serial}\n`);
    await until('the blocklist to reload', () => /blocklist reloaded/.test(captured.text()));
    assert.equal((await postAuth(url, agent, body)).status, 403, 'over HTTPS the revoked certificate is refused');
  });
  after(async () => {
    await gateway?.close(0);
    await server?.close();
  });

  it("attack: a revoked device's valid token over plain HTTP: next, a status report, inventory and the auth request get 403 JSON, nothing reaches upstream", async () => {
    const port = gateway.addresses.http!.port;
    const upstreamBefore = server.calls.length;
    for (const [what, raw] of deviceCalls()) assertRefused(what, await send(port, raw));
    assert.equal(server.calls.length, upstreamBefore, 'the emulator saw none of them');

    // Logged in the access log and counted like other refusals.
    assert.match(captured.text(), /level=warning msg="request"[^\n]*route=plain-http-refused status=403[^\n]*proto=http/);
    assert.doesNotMatch(captured.text(), new RegExp(token.split('.')[2]), 'the token is not logged');
    const metrics = await call('127.0.0.1', gateway.admin!.address()!.port, 'GET', '/metrics');
    assert.match(metrics.body, /^mender_gateway_mtls_refusals_total\{reason="plain_http"\} [4-9]$/m);
    assert.match(metrics.body, /^mender_gateway_http_requests_total\{method="PATCH",code="403",route="plain-http-refused"\} 1$/m);
  });

  it("attack: a revoked device's deviceconnect WebSocket upgrade over plain HTTP: 403 JSON, no tunnel, nothing upstream", async () => {
    const upstreamBefore = server.calls.length;
    const refused = await send(gateway.addresses.http!.port, upgradeRequest(CONNECT));
    assertRefused('deviceconnect upgrade', refused);
    assert.equal(server.calls.length, upstreamBefore, 'the emulator saw no upgrade');
    assert.match(captured.text(), /level=warning msg="websocket refused: plain HTTP while mTLS is on"/);
  });

  it('attack: near misses of the health probe over plain HTTP are refused, not forwarded', async () => {
    const port = gateway.addresses.http!.port;
    const upstreamBefore = server.calls.length;
    const auth = `Authorization: Bearer ${token}\r\n`;
    const nearMisses = [
      `POST ${ALIVE} HTTP/1.1\r\nHost: gw\r\n${auth}Content-Length: 0\r\n\r\n`,
      `GET http://gw${ALIVE} HTTP/1.1\r\nHost: gw\r\n${auth}\r\n`,
      `GET ${ALIVE}/ HTTP/1.1\r\nHost: gw\r\n${auth}\r\n`,
      `GET /${ALIVE} HTTP/1.1\r\nHost: gw\r\n${auth}\r\n`,
      `GET ${ALIVE}/../../../../devices/v1/inventory/device/attributes HTTP/1.1\r\nHost: gw\r\n${auth}\r\n`,
      `GET ${ALIVE.replace('alive', '%61live')} HTTP/1.1\r\nHost: gw\r\n${auth}\r\n`,
      `GET ${ALIVE.toUpperCase()} HTTP/1.1\r\nHost: gw\r\n${auth}\r\n`,
      upgradeRequest(ALIVE),
    ];
    for (const raw of nearMisses) assertRefused(raw.split('\r\n')[0], await send(port, raw));
    assert.equal(server.calls.length, upstreamBefore, 'the emulator saw none of them');
  });

  it('the health probe still answers 204 on plain HTTP (GET, HEAD, with a query string)', async () => {
    const port = gateway.addresses.http!.port;
    for (const [method, path] of [
      ['GET', ALIVE],
      ['HEAD', ALIVE],
      ['GET', `${ALIVE}?probe=k8s`],
    ]) {
      assert.equal((await call('127.0.0.1', port, method, path)).status, 204, `${method} ${path}`);
    }
  });

  it('with Features.mTLS.AllowPlainHTTP the same calls pass over plain HTTP, and the gateway warns at start', async () => {
    const log = captureLog('info');
    const open = await startGateway(mtlsConfig(true), log.log);
    try {
      assert.equal(
        log.lines.filter((l) => /level=warning msg="Features\.mTLS\.AllowPlainHTTP: devices may use the device API/.test(l)).length,
        1,
      );
      const port = open.addresses.http!.port;
      for (const [what, raw] of deviceCalls()) {
        const before = server.calls.length;
        const reply = await send(port, raw);
        assert.equal(reply.kind, 'response', what);
        if (what === 'auth request') {
          // The auth route itself still wants a certificate: nothing is preauthorized over plain HTTP.
          assert.equal(reply.status, 403, what);
          assert.match(jsonError(reply.body!).error, /client certificate required/);
          assert.equal(server.calls.length, before, what);
        } else {
          assert.notEqual(reply.status, 403, `${what}: ${reply.body?.toString()}`);
          assert.equal(server.calls.length, before + 1, `${what} reached upstream`);
        }
      }
      const ws = new WebSocket(`ws://127.0.0.1:${port}${CONNECT}`, { headers: { Authorization: `Bearer ${token}` } });
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      ws.close();
      assert.equal(server.calls.filter((c) => c.path === CONNECT).length, 1, 'the upgrade reached upstream');
    } finally {
      await open.close(0);
    }
  });
});
