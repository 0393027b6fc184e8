import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, before, it } from 'node:test';
import { startGateway, writeGatewayConfig, type GatewayProcess } from '../support/gateway-process';
import { closeServer, listenOnFreePort } from '../support/listen';
import { makeLeaf, makeTlsMaterial, type TlsMaterial } from '../support/tls-material';

// SIGHUP on the real command: a new server certificate is served to new connections
// while an open keep-alive connection goes on; a bad key, or an invalid configuration, keeps
// what runs and says why; the log level follows LogLevel.

let tls: TlsMaterial;
let gateway: GatewayProcess;
const upstream = http.createServer((_req, res) => res.writeHead(204).end());
const certPath = (): string => join(tls.dir, 'live.crt');
const keyPath = (): string => join(tls.dir, 'live.key');
let configFile: string;
let config: Record<string, unknown>;

function install(pair: { cert: string; key: string }): void {
  copyFileSync(pair.cert, certPath());
  copyFileSync(pair.key, keyPath());
}

/** GET alive on `agent`; returns the certificate's CN and whether the socket was reused. */
function probe(agent: https.Agent): Promise<{ cn: string; reused: boolean; status: number }> {
  const [host, port] = gateway.listeners.https.split(/:(?=\d+$)/);
  return new Promise((resolve, reject) => {
    const req = https.get(
      { host, port: Number(port), path: '/api/internal/v1/gateway/alive', agent, ca: readFileSync(tls.ca.cert) },
      (res) => {
        res.resume();
        const cert = (res.socket as TLSSocket).getPeerCertificate();
        res.on('end', () => resolve({ cn: String(cert.subject.CN), reused: req.reusedSocket, status: res.statusCode ?? 0 }));
      },
    );
    req.on('error', reject);
  });
}

async function hangup(expect: RegExp): Promise<void> {
  const before = gateway.output().length;
  gateway.process.kill('SIGHUP');
  await waitForOutput(expect, before);
}

async function waitForOutput(expect: RegExp, before: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!expect.test(gateway.output().slice(before))) {
    if (Date.now() > deadline) throw new Error(`no ${expect} in:\n${gateway.output().slice(before)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

before(async () => {
  tls = makeTlsMaterial();
  install(tls.server);
  const up = await listenOnFreePort(upstream);
  config = {
    HTTPS: { Enabled: true, Listen: '127.0.0.1:0', ServerCertificate: certPath(), ServerKey: keyPath() },
    UpstreamServer: { URL: `http://127.0.0.1:${up}` },
  };
  configFile = writeGatewayConfig(tls.dir, config);
  gateway = await startGateway({ configFile });
});

after(async () => {
  const code = await gateway.stop();
  await closeServer(upstream);
  rmSync(tls.dir, { recursive: true, force: true });
  assert.equal(code, 0, gateway.output());
});

it('SIGHUP: new certificate for new connections, the open one goes on; bad key and bad config keep what runs; log level reloads', async () => {
  const kept = new https.Agent({ keepAlive: true, maxSockets: 1 });
  const first = await probe(kept);
  assert.deepEqual([first.cn, first.status], ['localhost', 204]);

  const renewed = makeLeaf(tls.dir, 'renewed', tls.ca, { subject: '/CN=renewed.localhost', san: 'IP:127.0.0.1,DNS:localhost' });
  install(renewed);
  writeGatewayConfig(tls.dir, { ...config, LogLevel: 'debug' });
  await hangup(/msg="reload: server certificate replaced"/);
  assert.match(gateway.output(), /msg="reload: log level changed" from=info to=debug/);

  const again = await probe(kept);
  assert.deepEqual([again.cn, again.reused, again.status], ['localhost', true, 204], 'the open connection keeps going');
  const fresh = await probe(new https.Agent({ keepAlive: false }));
  assert.equal(fresh.cn, 'renewed.localhost', 'a new connection gets the new certificate');
  // A handshake failure is logged at debug level only: it shows up now.
  const [host, port] = gateway.listeners.https.split(/:(?=\d+$)/);
  net.connect(Number(port), host).end('not TLS\r\n\r\n');
  await waitForOutput(/level=debug msg="TLS handshake failed"/, gateway.output().length);

  // A key that does not belong to the certificate: refused, the renewed pair stays.
  const stranger = makeLeaf(tls.dir, 'stranger', tls.ca, { subject: '/CN=stranger' });
  copyFileSync(stranger.key, keyPath());
  await hangup(/msg="reload: server certificate not replaced, keeping the one in use".*reason=/);
  assert.equal((await probe(new https.Agent({ keepAlive: false }))).cn, 'renewed.localhost');

  // An invalid configuration file: nothing changes, the reason is logged.
  writeFileSync(configFile, '{"HTTPS": {"Enabled": "yes"}');
  await hangup(/msg="reload: configuration invalid, keeping the running one"/);
  assert.equal((await probe(new https.Agent({ keepAlive: false }))).status, 204);
  kept.destroy();
});
