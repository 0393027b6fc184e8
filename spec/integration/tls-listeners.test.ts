import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { startGateway } from '../../lib/gateway';
import { captureLog } from '../support/capture-log';
import { testConfig } from '../support/gateway-config';
import { closeServer, listenOnFreePort } from '../support/listen';
import { connectProxy } from '../support/connect-proxy';
import { makeTlsMaterial, type TlsMaterial } from '../support/tls-material';

// HTTPS listener, minimum TLS version, both listeners at once, upstream TLS trust and the
// outbound proxy.

function get(url: string, options: https.RequestOptions = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https') ? https : http;
    mod
      .get(url, { agent: false, ...options }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

function handshake(port: number, ca: Buffer, maxVersion: tls.SecureVersion): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, maxVersion, minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' }, () => {
      const version = socket.getProtocol() ?? '';
      socket.end();
      resolve(version);
    });
    socket.on('error', reject);
  });
}

describe('HTTPS listener', () => {
  let material: TlsMaterial;
  let ca: Buffer;
  const upstream = http.createServer((req, res) =>
    res.writeHead(200, { 'Content-Type': 'text/plain' }).end(`upstream saw ${req.headers['x-forwarded-proto']}`),
  );
  let upstreamPort: number;

  before(async () => {
    material = makeTlsMaterial();
    ca = readFileSync(material.ca.cert);
    upstreamPort = await listenOnFreePort(upstream);
  });
  after(() => closeServer(upstream));

  it('serves HTTP and HTTPS at once, and refuses TLS below MinimumTLSVersion', async () => {
    const gateway = await startGateway(
      testConfig({
        HTTP: { Enabled: true },
        HTTPS: { Enabled: true, MinimumTLSVersion: '1.2', ServerCertificate: material.server.cert, ServerKey: material.server.key },
        UpstreamServer: { URL: `http://127.0.0.1:${upstreamPort}` },
      }),
      captureLog().log,
    );
    try {
      const httpsPort = gateway.addresses.https!.port;
      const viaHttps = await get(`https://127.0.0.1:${httpsPort}/x`, { ca });
      assert.deepEqual(viaHttps, { status: 200, body: 'upstream saw https' });
      const viaHttp = await get(`http://127.0.0.1:${gateway.addresses.http!.port}/x`);
      assert.deepEqual(viaHttp, { status: 200, body: 'upstream saw http' });
      const alive = await get(`https://127.0.0.1:${httpsPort}/api/internal/v1/gateway/alive`, { ca });
      assert.equal(alive.status, 204);
      assert.equal(await handshake(httpsPort, ca, 'TLSv1.2'), 'TLSv1.2');
      await assert.rejects(handshake(httpsPort, ca, 'TLSv1.1'), /version|alert|handshake/i);
    } finally {
      await gateway.close(100);
    }
  });

  it('refuses TLS 1.2 when the minimum is 1.3', async () => {
    const gateway = await startGateway(
      testConfig({
        HTTP: { Enabled: false },
        HTTPS: { Enabled: true, MinimumTLSVersion: '1.3', ServerCertificate: material.server.cert, ServerKey: material.server.key },
        UpstreamServer: { URL: `http://127.0.0.1:${upstreamPort}` },
      }),
      captureLog().log,
    );
    try {
      const port = gateway.addresses.https!.port;
      assert.equal(await handshake(port, ca, 'TLSv1.3'), 'TLSv1.3');
      await assert.rejects(handshake(port, ca, 'TLSv1.2'), /version|alert|handshake/i);
    } finally {
      await gateway.close(100);
    }
  });

  it('offers TLS 1.2 only AEAD suites with forward secrecy by default, and the old CBC suites when MinimumTLSVersion asks for 1.0', async () => {
    const start = (MinimumTLSVersion: '1.0' | '1.2') =>
      startGateway(
        testConfig({
          HTTP: { Enabled: false },
          HTTPS: { Enabled: true, MinimumTLSVersion, ServerCertificate: material.server.cert, ServerKey: material.server.key },
          UpstreamServer: { URL: `http://127.0.0.1:${upstreamPort}` },
        }),
        captureLog().log,
      );
    // What the client offers: one TLS 1.2 suite, or TLS 1.0 with what OpenSSL 3 still has.
    const suite = (port: number, cipher: string, version: tls.SecureVersion = 'TLSv1.2') =>
      new Promise<string>((resolve, reject) => {
        const socket = tls.connect(
          { host: '127.0.0.1', port, ca, minVersion: version, maxVersion: version, ciphers: `${cipher}@SECLEVEL=0` },
          () => {
            const name = socket.getCipher().name;
            socket.end();
            resolve(name);
          },
        );
        socket.on('error', reject);
      });
    const modern = await start('1.2');
    const legacy = await start('1.0');
    try {
      const port = modern.addresses.https!.port;
      for (const gcm of ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305'])
        assert.equal(await suite(port, gcm), gcm);
      for (const cbc of ['ECDHE-ECDSA-AES128-SHA256', 'ECDHE-ECDSA-AES256-SHA', 'AES128-GCM-SHA256'])
        await assert.rejects(suite(port, cbc), /handshake|alert|cipher/i, `${cbc} was accepted`);
      assert.equal(await handshake(port, ca, 'TLSv1.3'), 'TLSv1.3');
      assert.equal(await suite(legacy.addresses.https!.port, 'ECDHE-ECDSA-AES128-SHA', 'TLSv1'), 'ECDHE-ECDSA-AES128-SHA');
      assert.equal(await suite(legacy.addresses.https!.port, 'ECDHE-ECDSA-AES128-SHA256'), 'ECDHE-ECDSA-AES128-SHA256');
    } finally {
      await Promise.all([modern.close(100), legacy.close(100)]);
    }
  });

  it('fails to start with one readable error when the port is in use', async () => {
    const blocker = net.createServer();
    const port = await listenOnFreePort(blocker);
    try {
      await assert.rejects(startGateway(testConfig({ HTTP: { Enabled: true, Listen: `127.0.0.1:${port}` } }), captureLog().log), {
        message: `HTTP.Listen 127.0.0.1:${port}: cannot listen: address already in use`,
      });
    } finally {
      await closeServer(blocker);
    }
  });
});

describe('upstream over TLS', () => {
  let material: TlsMaterial;
  let secureUpstream: https.Server;
  let securePort: number;

  before(async () => {
    material = makeTlsMaterial();
    secureUpstream = https.createServer({ cert: readFileSync(material.server.cert), key: readFileSync(material.server.key) }, (req, res) =>
      res.writeHead(200).end(`secure ${req.headers.host}`),
    );
    // An upgrade answered 101 with the Host it came with, then the connection ends.
    secureUpstream.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) =>
      socket.end(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Host: ${req.headers.host}\r\n\r\n`),
    );
    securePort = await listenOnFreePort(secureUpstream);
  });
  after(() => closeServer(secureUpstream));

  it('trusts UpstreamServer.CACertificate, and refuses an unknown CA with 502', async () => {
    const trusting = await startGateway(
      testConfig({ UpstreamServer: { URL: `https://127.0.0.1:${securePort}`, CACertificate: material.ca.cert } }),
      captureLog().log,
    );
    const untrusting = await startGateway(testConfig({ UpstreamServer: { URL: `https://127.0.0.1:${securePort}` } }), captureLog().log);
    const skipping = await startGateway(
      testConfig({ UpstreamServer: { URL: `https://127.0.0.1:${securePort}`, InsecureSkipVerify: true } }),
      captureLog().log,
    );
    try {
      assert.deepEqual(await get(`http://127.0.0.1:${trusting.addresses.http!.port}/`), {
        status: 200,
        body: `secure 127.0.0.1:${securePort}`,
      });
      assert.equal((await get(`http://127.0.0.1:${untrusting.addresses.http!.port}/`)).status, 502);
      assert.equal((await get(`http://127.0.0.1:${skipping.addresses.http!.port}/`)).status, 200);
    } finally {
      await Promise.all([trusting.close(100), untrusting.close(100), skipping.close(100)]);
    }
  });

  it('tunnels to upstream through HTTPS_PROXY with CONNECT, unless NO_PROXY names it', async () => {
    const { server: proxy, tunnels } = connectProxy();
    const proxyPort = await listenOnFreePort(proxy);
    const config = testConfig({ UpstreamServer: { URL: `https://127.0.0.1:${securePort}`, CACertificate: material.ca.cert } });
    const viaProxy = await startGateway(config, captureLog().log, { env: { HTTPS_PROXY: `http://user:pass@127.0.0.1:${proxyPort}` } });
    const bypass = await startGateway(config, captureLog().log, {
      env: { HTTPS_PROXY: `http://127.0.0.1:${proxyPort}`, NO_PROXY: 'example.com 127.0.0.1' },
    });
    try {
      assert.equal((await get(`http://127.0.0.1:${viaProxy.addresses.http!.port}/`)).status, 200);
      assert.equal(tunnels.length, 1);
      assert.equal(tunnels[0], `127.0.0.1:${securePort} Basic ${Buffer.from('user:pass').toString('base64')}`);
      assert.equal((await get(`http://127.0.0.1:${bypass.addresses.http!.port}/`)).status, 200);
      assert.equal(tunnels.length, 1, 'NO_PROXY (space-separated) must bypass the proxy');
    } finally {
      await Promise.all([viaProxy.close(100), bypass.close(100)]);
      await closeServer(proxy);
    }
  });

  it('applies the upstream trust settings inside the tunnel, for requests and WebSockets', async () => {
    const { server: proxy, tunnels } = connectProxy();
    const proxyPort = await listenOnFreePort(proxy);
    const env = { HTTPS_PROXY: `http://127.0.0.1:${proxyPort}` };
    const trusting = await startGateway(
      testConfig({ UpstreamServer: { URL: `https://127.0.0.1:${securePort}`, CACertificate: material.ca.cert } }),
      captureLog().log,
      { env },
    );
    const untrusting = await startGateway(testConfig({ UpstreamServer: { URL: `https://127.0.0.1:${securePort}` } }), captureLog().log, {
      env,
    });
    const upgrade = (port: number) =>
      new Promise<string>((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1', () =>
          socket.write(
            'GET /api/devices/v1/deviceconnect/connect HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
          ),
        );
        let text = '';
        socket.setEncoding('latin1').on('data', (t: string) => (text += t));
        socket.on('error', reject).on('close', () => resolve(text));
      });
    try {
      assert.equal((await get(`http://127.0.0.1:${untrusting.addresses.http!.port}/`)).status, 502);
      assert.match(await upgrade(untrusting.addresses.http!.port), /^HTTP\/1\.1 502 /);
      assert.deepEqual(await get(`http://127.0.0.1:${trusting.addresses.http!.port}/`), {
        status: 200,
        body: `secure 127.0.0.1:${securePort}`,
      });
      const answer = await upgrade(trusting.addresses.http!.port);
      assert.match(answer, /^HTTP\/1\.1 101 /);
      assert.match(answer, new RegExp(`\r\nX-Host: 127\\.0\\.0\\.1:${securePort}\r\n`));
      assert.ok(tunnels.length >= 4 && tunnels.every((t) => t === `127.0.0.1:${securePort}`), tunnels.join(' | '));
    } finally {
      await Promise.all([trusting.close(100), untrusting.close(100)]);
      await closeServer(proxy);
    }
  });
});
