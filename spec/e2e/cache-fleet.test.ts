import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startMenderServer, type MenderServer } from '../../fixtures/mender-server';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import { deployToFleet, RETRY_STATES } from '../support/fleet-deployment';
import { startGateway, writeGatewayConfig, type GatewayProcess } from '../support/gateway-process';
import { closeServer, listenOnFreePort } from '../support/listen';
import { makeArtifact, type Artifact } from '../support/make-artifact';
import { startFleet, type Fleet, type RealClient } from '../support/real-clients';
import { makeTlsMaterial, type TlsMaterial } from '../support/tls-material';

// Issue 5 end to end: real clients update through the gateway with the artifact cache on;
// the store, throttled so the devices' downloads overlap the fill, counts one download.

const CLIENTS = 8;
const EXPECTED_STATUSES = ['downloading', 'downloading', 'downloading', 'installing', 'installing', 'success'];

let dir: string;
let upstreamTls: TlsMaterial;
let gatewayTls: TlsMaterial;
let store: S3Store;
let server: MenderServer;
let gateway: GatewayProcess | undefined;
let fleet: Fleet | undefined;
let artifact: Artifact;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'e2e-cache-'));
  upstreamTls = makeTlsMaterial(mkdtempSync(join(dir, 'upstream-tls-')));
  gatewayTls = makeTlsMaterial(mkdtempSync(join(dir, 'gateway-tls-')));
  store = await startS3Store({ throttleBytesPerSecond: 512 * 1024 });
  server = await startMenderServer({ store, tls: upstreamTls.server, autoAccept: true });
  artifact = await makeArtifact({ dir, name: 'e2e-cache-1', payloadBytes: 1024 * 1024, seed: 'cache' });
  await server.uploadArtifact(artifact.path, { name: artifact.name, deviceTypes: [artifact.deviceType] });
  // GatewayURL must name the listener's port before the gateway starts: take a free one.
  const probe = net.createServer();
  const port = await listenOnFreePort(probe);
  await closeServer(probe);
  const configFile = writeGatewayConfig(dir, {
    HTTPS: { Enabled: true, Listen: `127.0.0.1:${port}`, ServerCertificate: gatewayTls.server.cert, ServerKey: gatewayTls.server.key },
    HTTP: { Enabled: false },
    UpstreamServer: { URL: server.url, CACertificate: upstreamTls.ca.cert },
    Features: {
      ArtifactsProxy: {
        Enabled: true,
        GatewayURL: `https://127.0.0.1:${port}`,
        DomainWhitelist: [store.host],
        ArtifactsCache: { Enabled: true, Path: join(dir, 'cache') },
      },
    },
  });
  gateway = await startGateway({ configFile, logLevel: 'debug' });
});

after(async () => {
  await fleet?.stop();
  const code = await gateway?.stop();
  await server?.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
  assert.equal(code, 0, `gateway exit code on SIGTERM\n${gateway?.output().slice(-2000)}`);
});

test(`${CLIENTS} real clients update through the cache; the store counts one download`, { timeout: 150_000 }, async () => {
  const bytesBefore = store.totalBytesServed();
  const getsBefore = store.requestLog.length;
  fleet = await startFleet({ count: CLIENTS, serverUrl: gateway!.url('https'), serverCertificate: gatewayTls.ca.cert, macPrefix: '02:00:00:07' });
  const run = await deployToFleet(fleet, server, artifact.name, 90_000);
  for (const [i, id] of run.deviceIds.entries()) {
    const client: RealClient = fleet.clients[i]!;
    assert.deepEqual(server.statuses(run.deploymentId, id), EXPECTED_STATUSES, `statuses of ${client.mac}\n${client.logTail()}`);
    const installed = createHash('sha256').update(readFileSync(client.installedPath(artifact.payloadName))).digest('hex');
    assert.equal(installed, artifact.payloadSha256, `payload installed by ${client.mac}`);
  }
  const artifactGets = store.requestLog.slice(getsBefore).filter((r) => r.method === 'GET' && r.status < 300);
  assert.equal(artifactGets.length, 1, `store requests: ${JSON.stringify(artifactGets)}`);
  assert.equal(artifactGets[0]!.range, undefined);
  assert.equal(store.totalBytesServed() - bytesBefore, artifact.size);
  // The entry is on disk, published once.
  assert.equal(readdirSync(join(dir, 'cache', 'v1', 'objects')).filter((n) => n.endsWith('.json')).length, 1);
  assert.deepEqual(fleet.logsMatching(RETRY_STATES).map((c) => `${c.mac}\n${c.logTail()}`), []);
  const logged = gateway!.output();
  assert.match(logged, /msg="artifact cached"/);
  assert.doesNotMatch(logged, /X-Amz-Signature=[0-9a-f]/i, 'a presigned signature appears in the gateway log');
});
