import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startMenderServer, type MenderServer } from '../../fixtures/mender-server';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import { deployToFleet, RETRY_STATES } from '../support/fleet-deployment';
import { startGateway, writeGatewayConfig, type GatewayProcess } from '../support/gateway-process';
import { makeArtifact, type Artifact } from '../support/make-artifact';
import { startFleet, type Fleet, type RealClient } from '../support/real-clients';
import { makeTlsMaterial, type TlsMaterial } from '../support/tls-material';

// Real clients → gateway (HTTPS, its certificate trusted via ServerCertificate) → emulator
// (HTTPS, trusted by the gateway via UpstreamServer.CACertificate). The artifact proxy is off:
// devices fetch the presigned link from the store themselves.

// E2E_CLIENTS scales the fleet for a manual run (e.g. 50); CI uses the default.
const CLIENTS = Number(process.env.E2E_CLIENTS ?? 12);
const EXPECTED_STATUSES = ['downloading', 'downloading', 'downloading', 'installing', 'installing', 'success'];

let dir: string;
let upstreamTls: TlsMaterial;
let gatewayTls: TlsMaterial;
let store: S3Store;
let server: MenderServer;
let gateway: GatewayProcess | undefined;
let artifact: Artifact;
let fleet: Fleet | undefined;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'e2e-gateway-'));
  // Two unrelated CAs: the devices can only trust the gateway, the gateway only the emulator.
  upstreamTls = makeTlsMaterial(mkdtempSync(join(dir, 'upstream-tls-')));
  gatewayTls = makeTlsMaterial(mkdtempSync(join(dir, 'gateway-tls-')));
  store = await startS3Store();
  server = await startMenderServer({ store, tls: upstreamTls.server, autoAccept: true });
  artifact = await makeArtifact({ dir, name: 'e2e-gateway-1', payloadBytes: 1024 * 1024, seed: 'gateway' });
  await server.uploadArtifact(artifact.path, { name: artifact.name, deviceTypes: [artifact.deviceType] });
  const configFile = writeGatewayConfig(dir, {
    HTTPS: {
      Enabled: true,
      Listen: '127.0.0.1:0',
      ServerCertificate: gatewayTls.server.cert,
      ServerKey: gatewayTls.server.key,
    },
    HTTP: { Enabled: false },
    UpstreamServer: { URL: server.url, CACertificate: upstreamTls.ca.cert },
    Features: { ArtifactsProxy: { Enabled: false } },
  });
  // Debug level: secrets must stay out of the log at every level.
  gateway = await startGateway({ configFile, logLevel: 'debug' });
});

after(async () => {
  await fleet?.stop();
  const code = await gateway?.stop();
  await server?.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
  if (gateway) assert.equal(code, 0, `gateway exit code on SIGTERM\n${gateway.output().slice(-2000)}`);
});

test(`${CLIENTS} real clients complete a deployment through the gateway`, { timeout: 150_000 }, async () => {
  const bytesBefore = store.totalBytesServed();
  fleet = await startFleet({
    count: CLIENTS, serverUrl: gateway!.url('https'), serverCertificate: gatewayTls.ca.cert, macPrefix: '02:00:00:02',
  });
  const run = await deployToFleet(fleet, server, artifact.name, 90_000);

  const byId = new Map(server.devices().map((d) => [d.id, d]));
  for (const [i, id] of run.deviceIds.entries()) {
    const client: RealClient = fleet.clients[i];
    assert.deepEqual(server.statuses(run.deploymentId, id), EXPECTED_STATUSES, `statuses of ${client.mac}\n${client.logTail()}`);
    assert.deepEqual(byId.get(id)!.identity, { mac: client.mac });
    assert.equal(byId.get(id)!.inventory.device_type, 'test-device', `inventory of ${client.mac}`);
    // auth (twice: start and ArtifactCommit), inventory, next, status all reached the emulator via the gateway.
    const paths = server.calls.filter((c) => c.deviceId === id).map((c) => `${c.method} ${c.path.split('?')[0]}`);
    for (const expected of [
      'PUT /api/devices/v1/inventory/device/attributes',
      `PUT /api/devices/v1/deployments/device/deployments/${run.deploymentId}/status`,
    ]) assert.ok(paths.includes(expected), `${client.mac} never sent ${expected}: ${paths.join(', ')}`);
    assert.ok(paths.some((p) => p.endsWith('/deployments/device/deployments/next')), `${client.mac} never polled next`);
    const installed = createHash('sha256').update(readFileSync(client.installedPath(artifact.payloadName))).digest('hex');
    assert.equal(installed, artifact.payloadSha256, `payload installed by ${client.mac}`);
  }
  // Every device call the emulator saw came through the gateway.
  const deviceCalls = server.calls.filter((c) => c.path.startsWith('/api/devices/'));
  const auths = deviceCalls.filter((c) => c.path === '/api/devices/v1/authentication/auth_requests' && c.status === 200);
  assert.ok(auths.length >= 2 * CLIENTS, `${auths.length} successful auth requests for ${CLIENTS} devices`);
  for (const call of deviceCalls) {
    assert.equal(call.headers['x-forwarded-proto'], 'https', `${call.method} ${call.path} did not come through the gateway`);
  }
  // Artifact proxy off: each device fetched the artifact once, whole, from the store.
  assert.equal(store.totalBytesServed() - bytesBefore, CLIENTS * artifact.size);
  assert.ok(run.elapsedMs < 55_000, `deployment took ${run.elapsedMs} ms`);
  assert.deepEqual(fleet.logsMatching(RETRY_STATES).map((c) => `${c.mac}\n${c.logTail()}`), []);
  // Device JWTs and the presigned links' signatures crossed the gateway; none may be logged.
  const logged = gateway!.output();
  assert.match(logged, /msg="request".*auth_requests/, 'the gateway did not log device requests');
  assert.doesNotMatch(logged, /eyJ[\w-]{10,}\.[\w-]{10,}/, 'a JWT appears in the gateway log');
  assert.doesNotMatch(logged, /X-Amz-Signature=[0-9a-f]/i, 'a presigned signature appears in the gateway log');
  console.log(`through gateway: ${CLIENTS} clients updated in ${run.elapsedMs} ms (fast start: ${fleet.fastCerts ? 'yes' : fleet.fastCertsNote})`);
});
