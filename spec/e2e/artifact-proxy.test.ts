import assert from 'node:assert/strict';
import { join } from 'node:path';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { deployToFleet, RETRY_STATES } from '../support/fleet-deployment';
import { assertFleetCompleted, e2eScenario } from '../support/e2e-scenario';
import { closeServer, listenOnFreePort } from '../support/listen';

// Real clients update through the gateway with Features.ArtifactsProxy on (cache off):
// deployments/next is rewritten to signed gateway links, and the store is only ever
// reached by the gateway. GatewayURL points at a TCP relay in front of the gateway's HTTPS
// listener, so one test can cut a download mid-way and watch the client resume (206).

const DEVICE_AGENT = 'Go-http-client/1.1';

let gatewayPort = 0;
let cutAfterBytes = 0; // > 0: the next relayed connection that carries this much is cut
const relaySockets = new Set<net.Socket>();
const relay = net.createServer((device) => {
  const toGateway = net.connect(gatewayPort, '127.0.0.1');
  relaySockets.add(device).add(toGateway);
  let carried = 0;
  device.pipe(toGateway);
  toGateway.on('data', (chunk: Buffer) => {
    carried += chunk.length;
    if (cutAfterBytes > 0 && carried > cutAfterBytes) {
      cutAfterBytes = 0;
      device.destroy();
      toGateway.destroy();
      return;
    }
    device.write(chunk);
  });
  toGateway.on('end', () => device.end());
  for (const s of [device, toGateway]) {
    s.on('error', () => undefined);
    s.on('close', () => {
      relaySockets.delete(s);
      device.destroy();
      toGateway.destroy();
    });
  }
});

const scenario = e2eScenario({
  dirPrefix: 'e2e-artifact-proxy-',
  tls: 'split',
  server: { autoAccept: true },
  artifact: { name: 'e2e-artifact-proxy-1', payloadBytes: 1024 * 1024, seed: 'artifact-proxy' },
  gatewayConfig: async ({ dir, gatewayTls, upstreamTls, server, store }) => {
    const relayPort = await listenOnFreePort(relay);
    return {
      HTTPS: { Enabled: true, Listen: '127.0.0.1:0', ServerCertificate: gatewayTls.server.cert, ServerKey: gatewayTls.server.key },
      HTTP: { Enabled: false },
      UpstreamServer: { URL: server.url, CACertificate: upstreamTls.ca.cert },
      Features: {
        ArtifactsProxy: {
          Enabled: true,
          GatewayURL: `https://127.0.0.1:${relayPort}`,
          DomainWhitelist: [store.host],
          ArtifactsCache: { Enabled: false, Path: join(dir, 'cache') },
        },
      },
    };
  },
  async afterGatewayStop() {
    for (const s of relaySockets) s.destroy();
    await closeServer(relay);
  },
});

before(async () => {
  await scenario.start();
  gatewayPort = Number(scenario.gateway.listeners.https!.split(':').at(-1));
});
after(() => scenario.stop());

function artifactRequests() {
  return scenario.store.requestLog.filter((r) => r.method === 'GET' && !r.path.endsWith('/') && r.path.includes('/'));
}

test('a fleet installs through the artifact proxy; only the gateway reaches the store', { timeout: 150_000 }, async () => {
  const { server, store, artifact, gateway } = scenario;
  const count = 6;
  const seenBefore = artifactRequests().length;
  const bytesBefore = store.totalBytesServed();
  const fleet = await scenario.startFleet({ count, macPrefix: '02:00:00:04' });
  const run = await deployToFleet(fleet, server, artifact.name, 90_000);
  assertFleetCompleted(scenario, fleet, run);
  const downloads = artifactRequests().slice(seenBefore);
  assert.equal(downloads.length, count, `store requests: ${JSON.stringify(downloads)}`);
  for (const r of downloads) assert.notEqual(r.userAgent, DEVICE_AGENT, 'a device fetched from the store directly');
  assert.equal(store.totalBytesServed() - bytesBefore, count * artifact.size);
  assert.equal((gateway.output().match(/msg="artifact link rewritten to the gateway"/g) ?? []).length >= count, true);
  assert.deepEqual(
    fleet.logsMatching(RETRY_STATES).map((c) => `${c.mac}\n${c.logTail()}`),
    [],
  );
  const logged = gateway.output();
  assert.doesNotMatch(logged, /X-Amz-Signature=[0-9a-f]/i, 'a presigned signature appears in the gateway log');
  assert.doesNotMatch(logged, /x-men-signature=[\w-]{10}/i, 'a gateway link signature appears in the gateway log');
  await fleet.stop();
});

test('a download cut mid-way resumes through the gateway with a 206', { timeout: 180_000 }, async () => {
  const { server, artifact, gateway } = scenario;
  const seenBefore = artifactRequests().length;
  cutAfterBytes = 400_000;
  const fleet = await scenario.startFleet({ count: 1, macPrefix: '02:00:00:05' });
  // The client waits its 60 s resume floor before the Range request.
  const run = await deployToFleet(fleet, server, artifact.name, 150_000);
  const client = fleet.clients[0]!;
  assert.equal(cutAfterBytes, 0, 'the relay never cut the download');
  assertFleetCompleted(scenario, fleet, run);
  assert.match(client.logTail(200), /Resuming download/);
  const downloads = artifactRequests().slice(seenBefore);
  const resumed = downloads.filter((r) => r.range !== undefined && r.range !== 'bytes=0-0');
  assert.equal(resumed.length, 1, `store requests: ${JSON.stringify(downloads)}`);
  assert.match(resumed[0]!.range!, /^bytes=[1-9]\d*-$/);
  assert.equal(resumed[0]!.status, 206);
  for (const r of downloads) assert.notEqual(r.userAgent, DEVICE_AGENT, 'a device fetched from the store directly');
  assert.match(gateway.output(), /status=206/);
});
