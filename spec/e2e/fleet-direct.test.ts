import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startMenderServer, type MenderServer } from '../../fixtures/mender-server';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import { deployToFleet, RETRY_STATES } from '../support/fleet-deployment';
import { makeArtifact, type Artifact } from '../support/make-artifact';
import { startFleet, type Fleet, type RealClient } from '../support/real-clients';
import { makeTlsMaterial, type TlsMaterial } from '../support/tls-material';

// "Direct" mode: real clients straight to the emulator. Proves the harness and the emulator
// before the gateway is put between them (fleet-through-gateway.test.ts).

// E2E_CLIENTS scales the fleet for a manual run (e.g. 50); CI uses the default.
const CLIENTS = Number(process.env.E2E_CLIENTS ?? 10);
const EXPECTED_STATUSES = ['downloading', 'downloading', 'downloading', 'installing', 'installing', 'success'];

let dir: string;
let tls: TlsMaterial;
let store: S3Store;
let server: MenderServer;
let artifact: Artifact;
let fleet: Fleet | undefined;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'e2e-direct-'));
  tls = makeTlsMaterial(mkdtempSync(join(dir, 'tls-')));
  store = await startS3Store();
  server = await startMenderServer({ store, tls: tls.server, autoAccept: true });
  artifact = await makeArtifact({ dir, name: 'e2e-direct-1', payloadBytes: 1024 * 1024, seed: 'direct' });
  await server.uploadArtifact(artifact.path, { name: artifact.name, deviceTypes: [artifact.deviceType] });
});

after(async () => {
  await fleet?.stop();
  await server?.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

test(`${CLIENTS} real clients straight to the emulator complete one deployment`, { timeout: 150_000 }, async () => {
  const bytesBefore = store.totalBytesServed();
  fleet = await startFleet({ count: CLIENTS, serverUrl: server.url, serverCertificate: tls.ca.cert, macPrefix: '02:00:00:01' });
  const run = await deployToFleet(fleet, server, artifact.name, 90_000);

  const byId = new Map(server.devices().map((d) => [d.id, d]));
  for (const [i, id] of run.deviceIds.entries()) {
    const client: RealClient = fleet.clients[i];
    assert.deepEqual(server.statuses(run.deploymentId, id), EXPECTED_STATUSES, `statuses of ${client.mac}\n${client.logTail()}`);
    assert.deepEqual(byId.get(id)!.identity, { mac: client.mac });
    assert.equal(byId.get(id)!.inventory.device_type, 'test-device', `inventory of ${client.mac}`);
    const installed = createHash('sha256').update(readFileSync(client.installedPath(artifact.payloadName))).digest('hex');
    assert.equal(installed, artifact.payloadSha256, `payload installed by ${client.mac}`);
  }
  // Each device fetched the artifact once, whole, from the store.
  assert.equal(store.totalBytesServed() - bytesBefore, CLIENTS * artifact.size);
  // No one-minute retry was needed on the way.
  assert.ok(run.elapsedMs < 55_000, `deployment took ${run.elapsedMs} ms`);
  assert.deepEqual(fleet.logsMatching(RETRY_STATES).map((c) => `${c.mac}\n${c.logTail()}`), []);

  // After success the client reports its new artifact in inventory.
  await fleet.waitFor(
    () => run.deviceIds.every((id) => server.devices().find((d) => d.id === id)?.inventory.artifact_name === artifact.name),
    15_000, 'inventory with the new artifact_name',
  );
  console.log(`direct: ${CLIENTS} clients updated in ${run.elapsedMs} ms (fast start: ${fleet.fastCerts ? 'yes' : fleet.fastCertsNote})`);
});
