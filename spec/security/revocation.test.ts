import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { appendFileSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type https from 'node:https';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { startMenderServer, type MenderServer } from '../../fixtures/mender-server';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import { reloadConfig } from '../../lib/admin/reload-config';
import { loadConfig } from '../../lib/config/load-config';
import type { GatewayConfig } from '../../lib/config/types';
import { startGateway, type RunningGateway } from '../../lib/gateway';
import { metricsRegistry } from '../../lib/observe/metrics';
import { captureLog } from '../support/capture-log';
import { makeCrl, makeDeviceCert, makeIntermediate, type DeviceCert } from '../support/device-certs';
import { postAuth, signedAuthBody, tlsAgent } from '../support/mtls-device';
import { makeCa, makeLeaf, makeTlsMaterial, type TlsMaterial } from '../support/tls-material';
import { mtlsTestConfig } from '../support/mtls-pair';

// Revocation cuts what is already open. A LAN device holds a connection through the gateway
// (a deviceconnect WebSocket tunnel, an HTTPS keep-alive connection, a TLS session ticket), then
// the operator revokes it (blocklist, CRL, a CA that no longer signs it) or its certificate
// expires: what it holds is closed within seconds, and nothing of it is admitted again.

const USER = { email: 'gw@example.com', password: 'pw' };
const DEVICECONNECT = '/api/devices/v1/deviceconnect/connect';

let dir: string;
let material: TlsMaterial;
let store: S3Store;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'revocation-'));
  material = makeTlsMaterial(dir);
  store = await startS3Store();
});
after(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

type MtlsSettings = Partial<GatewayConfig['Features']['mTLS']>;

interface Site {
  url: string;
  server: MenderServer;
  gateway: RunningGateway;
  captured: ReturnType<typeof captureLog>;
  config(mtls?: MtlsSettings, https?: Partial<GatewayConfig['HTTPS']>): GatewayConfig;
}

/** The Mender server emulator and an mTLS gateway in front of it; closed after `body`. */
async function withSite(mtls: MtlsSettings, body: (site: Site) => Promise<void>): Promise<void> {
  const server = await startMenderServer({ store, users: [USER] });
  const captured = captureLog('debug');
  const config = (more: MtlsSettings = {}, https: Partial<GatewayConfig['HTTPS']> = {}) =>
    mtlsTestConfig({ tls: material, upstreamUrl: server.url, user: USER, https, mtls: { ...mtls, ...more } });
  let gateway: RunningGateway | undefined;
  try {
    gateway = await startGateway(config(), captured.log);
    await body({ url: `https://127.0.0.1:${gateway.addresses.https!.port}`, server, gateway, captured, config });
  } finally {
    await gateway?.close(0);
    await server.close();
  }
}

const deviceTls = (device: DeviceCert) => ({ ca: material.ca.cert, cert: device.chain, key: device.key });

let mac = 0;
/** The device's auth request through the gateway on `agent`: its status, and the JWT when 200. */
async function authenticate(site: Site, device: DeviceCert, agent: https.Agent) {
  const identity = { mac: `02:00:00:25:04:${(mac++).toString(16).padStart(2, '0')}` };
  const reply = await postAuth(site.url, agent, signedAuthBody(identity, device.key));
  const id = site.server.deviceByIdentity(identity)?.id;
  return { status: reply.status, body: reply.body, jwt: reply.body, id, sessionReused: reply.sessionReused };
}

/** A device with a deviceconnect WebSocket open through the gateway, seen by the server. */
async function openTunnel(site: Site, device: DeviceCert): Promise<{ ws: WebSocket; id: string }> {
  const agent = tlsAgent(deviceTls(device));
  const auth = await authenticate(site, device, agent);
  agent.destroy();
  assert.equal(auth.status, 200, auth.body);
  const ws = new WebSocket(`wss://127.0.0.1${site.url.slice(site.url.lastIndexOf(':'))}${DEVICECONNECT}`, {
    ...tlsFiles(device),
    headers: { Authorization: `Bearer ${auth.jwt}` },
  });
  ws.on('error', () => undefined);
  await once(ws, 'open');
  await site.server.deviceconnect.waitForDevice(auth.id!, 5000);
  return { ws, id: auth.id! };
}

const tlsFiles = (device: DeviceCert) => ({
  ca: readFileSync(material.ca.cert),
  cert: readFileSync(device.chain),
  key: readFileSync(device.key),
});

/** The tunnel is closed by the gateway within `ms`, upstream's side included. */
async function tunnelCut(site: Site, tunnel: { ws: WebSocket; id: string }, ms = 5000): Promise<void> {
  if (tunnel.ws.readyState !== WebSocket.CLOSED) {
    await once(tunnel.ws, 'close', { signal: AbortSignal.timeout(ms) }).catch(() =>
      assert.fail(`the revoked device's tunnel is still open after ${ms} ms`),
    );
  }
  const deadline = Date.now() + 2000;
  while (site.server.deviceconnect.connectedDevices().includes(tunnel.id)) {
    if (Date.now() > deadline) assert.fail('the upstream side of the tunnel is still open');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A kept-alive connection: the agent's one idle socket after a request. */
function idleSocket(agent: https.Agent): Socket {
  const sockets = Object.values(agent.freeSockets).flat();
  assert.equal(sockets.length, 1);
  return sockets[0] as Socket;
}

async function closedWithin(socket: Socket, ms: number, message: string): Promise<void> {
  if (socket.destroyed) return;
  await once(socket, 'close', { signal: AbortSignal.timeout(ms) }).catch(() => assert.fail(message));
}

/** A new TLS connection with `device`'s certificate: does any request get through it? */
async function newConnectionAdmitted(site: Site, device: DeviceCert): Promise<boolean> {
  const agent = tlsAgent(deviceTls(device));
  try {
    return (await authenticate(site, device, agent)).status === 200;
  } catch {
    return false; // refused at the handshake
  } finally {
    agent.destroy();
  }
}

async function waitForLog(site: Site, pattern: RegExp): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!pattern.test(site.captured.text())) {
    if (Date.now() > deadline) assert.fail(`no log line ${pattern}:\n${site.captured.text()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function closedCount(reason: string): Promise<number> {
  const line = (await metricsRegistry.metrics())
    .split('\n')
    .find((l) => l.startsWith(`mender_gateway_mtls_connections_closed_total{reason="${reason}"} `));
  return Number(line?.split(' ')[1] ?? 0);
}

describe('revocation cuts open connections', () => {
  it('attack: a blocklisted device keeps its deviceconnect tunnel (a remote terminal) open', async () => {
    const blocklist = join(dir, 'blocklist-tunnel.txt');
    writeFileSync(blocklist, '# none yet\n');
    const device = makeDeviceCert(dir, 'tunnel-blocklisted', material.ca);
    const bystander = makeDeviceCert(dir, 'tunnel-bystander', material.ca);
    await withSite({ BlacklistPath: blocklist }, async (site) => {
      const tunnel = await openTunnel(site, device);
      const other = await openTunnel(site, bystander);
      const closedBefore = await closedCount('blocklisted');
      appendFileSync(blocklist, `${device.serial}\n`);
      await tunnelCut(site, tunnel);
      assert.match(
        site.captured.text(),
        /msg="connection closed: client certificate no longer admitted" .*serial=0?[0-9A-F]+ reason=".*is blocklisted" after=blocklist websocket=true/,
      );
      assert.equal(await closedCount('blocklisted'), closedBefore + 1, 'counted once');
      assert.equal(other.ws.readyState, WebSocket.OPEN, 'a device not listed keeps its tunnel');
      assert.ok(site.server.deviceconnect.connectedDevices().includes(other.id));
      assert.equal(await newConnectionAdmitted(site, device), false);
      other.ws.close();
    });
  });

  it("attack: a device revoked by the CA's CRL keeps its deviceconnect tunnel open", async () => {
    const crl = join(dir, 'tunnel.crl');
    copyFileSync(makeCrl(dir, 'tunnel-crl-0', material.ca, { revoked: [] }), crl);
    const device = makeDeviceCert(dir, 'tunnel-crl-revoked', material.ca);
    await withSite({ CRLPath: crl }, async (site) => {
      const tunnel = await openTunnel(site, device);
      copyFileSync(makeCrl(dir, 'tunnel-crl-1', material.ca, { revoked: [device.serial] }), crl);
      await tunnelCut(site, tunnel);
      assert.match(site.captured.text(), /connection closed: .*reason=".*revoked by the CA's CRL" after=crl websocket=true/);
      assert.equal(await newConnectionAdmitted(site, device), false);
    });
  });

  it('attack: a blocklisted device keeps its idle keep-alive HTTPS connection', async () => {
    const blocklist = join(dir, 'blocklist-keepalive.txt');
    writeFileSync(blocklist, '');
    const device = makeDeviceCert(dir, 'keepalive-blocklisted', material.ca);
    await withSite({ BlacklistPath: blocklist }, async (site) => {
      const agent = tlsAgent(deviceTls(device), { keepAlive: true, maxSockets: 1 });
      assert.equal((await authenticate(site, device, agent)).status, 200);
      const socket = idleSocket(agent);
      writeFileSync(blocklist, `${device.serial}\n`);
      await closedWithin(socket, 5000, 'the kept-alive connection of a blocklisted device is still open, no request needed to close it');
      agent.destroy();
    });
  });

  it('attack: a device the reloaded CA does not sign keeps its open connection and handshakes again (also when the server certificate reload fails)', async () => {
    const otherCa = makeCa(dir, 'other-ca', '/CN=Other Device CA');
    const newcomer = makeDeviceCert(dir, 'newcomer', otherCa);
    const serverPair = makeLeaf(dir, 'server-only', otherCa, { extendedKeyUsage: 'serverAuth' });
    const serverOnly: DeviceCert = { ...serverPair, chain: serverPair.cert, serial: '' };
    const broken = join(dir, 'broken-server.crt');
    writeFileSync(broken, '-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n');
    for (const serverCertificate of [material.server.cert, broken]) {
      const device = makeDeviceCert(dir, `old-ca-device-${serverCertificate === broken ? 'b' : 'a'}`, material.ca);
      await withSite({}, async (site) => {
        const agent = tlsAgent(deviceTls(device), { keepAlive: true, maxSockets: 1 });
        assert.equal((await authenticate(site, device, agent)).status, 200);
        const socket = idleSocket(agent);
        site.gateway.reload(site.config({ CACertificate: otherCa.cert }, { ServerCertificate: serverCertificate }));
        await closedWithin(socket, 5000, `${serverCertificate}: the open connection of a device the new CA does not sign is still open`);
        assert.equal(await newConnectionAdmitted(site, device), false, `${serverCertificate}: a new handshake of the old CA's device`);
        assert.equal(await newConnectionAdmitted(site, newcomer), true, `${serverCertificate}: the new CA's device`);
        // Verified by the gateway too while a handshake may still hold the old CA: purpose included.
        assert.equal(
          await newConnectionAdmitted(site, serverOnly),
          false,
          `${serverCertificate}: a serverAuth-only certificate of the new CA`,
        );
        if (serverCertificate === broken) {
          assert.match(site.captured.text(), /reload: server certificate not replaced, keeping the one in use/);
          assert.match(site.captured.text(), /reload: mTLS CA replaced in TLS handshakes, with the server certificate in use/);
        } else assert.match(site.captured.text(), /reload: server certificate replaced" .*mtls_ca=replaced/);
        agent.destroy();
      });
    }
  });

  it("attack: a device under an intermediate CA that the root's CRL revokes is admitted (new, open and resumed connections)", async () => {
    const intermediate = makeIntermediate(dir, 'revoked-intermediate', material.ca);
    const intermediateSerial = new X509Certificate(readFileSync(intermediate.cert)).serialNumber;
    const device = makeDeviceCert(dir, 'under-revoked-intermediate', intermediate);
    const sibling = makeDeviceCert(dir, 'under-revoked-intermediate-2', intermediate);
    const direct = makeDeviceCert(dir, 'under-root', material.ca);
    const crl = join(dir, 'root.crl');
    // Several CRLs in one PEM: the root's, and (first) an unrelated one of the same root.
    const writeCrl = (revoked: string[], name: string) => {
      const unrelated = readFileSync(makeCrl(dir, `${name}-other`, material.ca, { revoked: ['0DDD'] }), 'utf8');
      writeFileSync(crl, unrelated + readFileSync(makeCrl(dir, name, material.ca, { revoked }), 'utf8'));
    };
    writeCrl([], 'root-crl-0');
    await withSite({ CRLPath: crl }, async (site) => {
      const agent = tlsAgent(deviceTls(device), { keepAlive: true, maxSockets: 1 });
      assert.equal((await authenticate(site, device, agent)).status, 200);
      const socket = idleSocket(agent);
      // The sibling gets a TLS session ticket while its intermediate is still good.
      const resumable = tlsAgent(deviceTls(sibling));
      assert.equal((await authenticate(site, sibling, resumable)).status, 200);
      writeCrl([intermediateSerial], 'root-crl-1');
      await closedWithin(socket, 5000, 'the open connection of a device under the revoked intermediate is still open');
      assert.match(site.captured.text(), /its issuing CA \(serial [0-9A-F]+\) is revoked by the CA's CRL/);
      assert.equal(await newConnectionAdmitted(site, device), false, 'a new connection under the revoked intermediate');
      const fresh = tlsAgent(deviceTls(sibling));
      const first = await authenticate(site, sibling, fresh).catch(() => ({ status: 0, sessionReused: false }));
      assert.notEqual(first.status, 200, 'the sibling, full handshake');
      // Its session (from before the revocation) may not resume; one made now carries no chain.
      const resumed = await authenticate(site, sibling, fresh).catch(() => ({ status: 0, sessionReused: false }));
      assert.notEqual(resumed.status, 200, `the sibling on a resumed session (reused: ${resumed.sessionReused})`);
      const old = await authenticate(site, sibling, resumable).catch(() => ({ status: 0, sessionReused: false }));
      assert.notEqual(old.status, 200, 'the sibling with its ticket from before the revocation');
      assert.equal(await newConnectionAdmitted(site, direct), true, 'a device of the root itself is not affected');
      agent.destroy();
      fresh.destroy();
      resumable.destroy();
    });
  });

  it('attack: a certificate that expires while its keep-alive connection is open keeps working, and its TLS session resumes after NotAfter', async () => {
    // Valid for a few seconds from now (openssl sets exact dates).
    const device = makeDeviceCert(dir, 'short-lived', material.ca, { fromDays: -1, toDays: 8 / 86_400 });
    const notAfter = Date.parse(new X509Certificate(readFileSync(device.cert)).validTo);
    await withSite({}, async (site) => {
      const agent = tlsAgent(deviceTls(device), { keepAlive: true, maxSockets: 1 });
      assert.equal((await authenticate(site, device, agent)).status, 200);
      const socket = idleSocket(agent);
      // A session ticket from before NotAfter.
      const session = await ticketFor(site, device);
      const wait = notAfter + 1500 - Date.now();
      assert.ok(wait > 0, 'the certificate expired before the test could use it');
      await new Promise((r) => setTimeout(r, wait));

      assert.equal(idleSocket(agent), socket, 'the connection is still open');
      const next = await authenticate(site, device, agent);
      assert.equal(next.status, 401, next.body);
      assert.deepEqual(Object.keys(JSON.parse(next.body)), ['error', 'request_id']);
      assert.match(site.captured.text(), /request refused: client certificate" .*reason="client certificate refused: CERT_HAS_EXPIRED"/);
      // The refusal has its access-log line, under the guard's route name (the path may be a signed link).
      assert.match(site.captured.text(), /msg="request" .*method=POST path="<mtls-refused>" route=mtls-refused status=401 bytes=[1-9]/);

      const resumed = await requestOnSession(site, device, session);
      assert.equal(resumed.reused, true, 'the client resumed its session');
      assert.doesNotMatch(resumed.answer, /^HTTP\/1\.1 2/, 'a resumed session after NotAfter');
      agent.destroy();
    });
  });

  it('attack: a device whose certificate expires keeps its deviceconnect tunnel open', async () => {
    const device = makeDeviceCert(dir, 'short-lived-tunnel', material.ca, { fromDays: -1, toDays: 8 / 86_400 });
    const notAfter = Date.parse(new X509Certificate(readFileSync(device.cert)).validTo);
    await withSite({}, async (site) => {
      const tunnel = await openTunnel(site, device);
      assert.ok(Date.now() < notAfter, 'the certificate expired before the tunnel was up');
      // No request on a tunnel: the gateway closes it by itself, within a few seconds of NotAfter.
      await tunnelCut(site, tunnel, notAfter - Date.now() + 4000);
      assert.match(
        site.captured.text(),
        /connection closed: .*reason="client certificate refused: CERT_HAS_EXPIRED" after=expiry websocket=true/,
      );
    });
  });

  it('attack: a SIGHUP that points BlacklistPath at a new file is ignored (the listed device keeps its tunnel and gets in)', async () => {
    const first = join(dir, 'blocklist-first.txt');
    const second = join(dir, 'blocklist-second.txt');
    writeFileSync(first, '');
    const device = makeDeviceCert(dir, 'listed-by-new-file', material.ca);
    writeFileSync(second, `${device.serial}\n`);
    await withSite({ BlacklistPath: first }, async (site) => {
      const tunnel = await openTunnel(site, device);
      // The real SIGHUP path: the configuration file read again, then handed to the gateway.
      const file = join(dir, 'sighup.json');
      const fileWith = (blocklistPath: string) => {
        const { HTTP, HTTPS, UpstreamServer, Features } = site.config({ BlacklistPath: blocklistPath });
        writeFileSync(file, JSON.stringify({ HTTP, HTTPS, UpstreamServer, Features: { mTLS: Features.mTLS } }));
      };
      fileWith(first);
      const options = { file, explicit: true, env: {}, levelFlag: undefined };
      const running = loadConfig(options).config;
      fileWith(second);
      reloadConfig(running, site.gateway, options, site.captured.log);
      await tunnelCut(site, tunnel);
      assert.match(site.captured.text(), /reload: Features\.mTLS\.BlacklistPath changed, now watching the new file/);
      assert.doesNotMatch(site.captured.text(), /take effect only after a restart/);
      assert.equal(await newConnectionAdmitted(site, device), false);
      // The new file is watched from now on: emptied, the device gets in again.
      writeFileSync(second, '');
      await waitForLog(site, /client certificate blocklist reloaded" .*blocklist-second\.txt serials=0/);
      assert.equal(await newConnectionAdmitted(site, device), true);
    });
  });
});

/** A TLS session of `device` with the gateway (a full handshake and one request). */
async function ticketFor(site: Site, device: DeviceCert): Promise<Buffer> {
  const { answer, session } = await rawRequest(site, device);
  assert.match(answer, /^HTTP\/1\.1 204/);
  assert.ok(session, 'the gateway issued a session ticket');
  return session;
}

function requestOnSession(site: Site, device: DeviceCert, session: Buffer) {
  return rawRequest(site, device, session);
}

/** GET alive over a new TLS connection (resuming `session` when given): the raw answer. */
function rawRequest(site: Site, device: DeviceCert, session?: Buffer): Promise<{ answer: string; reused: boolean; session?: Buffer }> {
  const port = Number(site.url.slice(site.url.lastIndexOf(':') + 1));
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ...tlsFiles(device), session });
    let answer = '';
    let reused = false;
    let ticket: Buffer | undefined;
    socket.on('session', (s: Buffer) => (ticket = s));
    socket.on('secureConnect', () => {
      reused = socket.isSessionReused();
      socket.write('GET /api/internal/v1/gateway/alive HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
    });
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ answer, reused, session: ticket }));
    socket.setTimeout(5000, () => socket.destroy());
  });
}
