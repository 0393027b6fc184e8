import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { deployToFleet, RETRY_STATES } from '../support/fleet-deployment';
import { assertFleetCompleted, e2eScenario } from '../support/e2e-scenario';

// "Direct" mode: real clients straight to the emulator. Proves the harness and the emulator
// before the gateway is put between them (fleet-through-gateway.test.ts).

// E2E_CLIENTS scales the fleet for a manual run (e.g. 50); CI uses the default.
const CLIENTS = Number(process.env.E2E_CLIENTS ?? 10);

// No gatewayConfig: the fleet talks to the emulator and trusts its CA.
const scenario = e2eScenario({
  dirPrefix: 'e2e-direct-',
  tls: 'shared',
  server: { autoAccept: true },
  artifact: { name: 'e2e-direct-1', payloadBytes: 1024 * 1024, seed: 'direct' },
});

before(() => scenario.start());
after(() => scenario.stop());

test(`${CLIENTS} real clients straight to the emulator complete one deployment`, { timeout: 150_000 }, async () => {
  const { server, store, artifact } = scenario;
  const bytesBefore = store.totalBytesServed();
  const fleet = await scenario.startFleet({ count: CLIENTS, macPrefix: '02:00:00:01' });
  const run = await deployToFleet(fleet, server, artifact.name, 90_000);

  assertFleetCompleted(scenario, fleet, run);
  // Each device fetched the artifact once, whole, from the store.
  assert.equal(store.totalBytesServed() - bytesBefore, CLIENTS * artifact.size);
  // No one-minute retry was needed on the way.
  assert.ok(run.elapsedMs < 55_000, `deployment took ${run.elapsedMs} ms`);
  assert.deepEqual(
    fleet.logsMatching(RETRY_STATES).map((c) => `${c.mac}\n${c.logTail()}`),
    [],
  );

  // After success the client reports its new artifact in inventory.
  await fleet.waitFor(
    () => run.deviceIds.every((id) => server.devices().find((d) => d.id === id)?.inventory.artifact_name === artifact.name),
    15_000,
    'inventory with the new artifact_name',
  );
  console.log(`direct: ${CLIENTS} clients updated in ${run.elapsedMs} ms (fast start: ${fleet.fastCerts ? 'yes' : fleet.fastCertsNote})`);
});
