import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { waitForFleetOnline } from '../support/fleet-deployment';
import { assertFleetCompleted, EXPECTED_STATUSES } from '../support/e2e-scenario';
import { assertStatusesOnce, FINISHED, journaledCount, nextServed, outageScenario } from './outage-scenario';

// Real clients complete an update while the Mender server is down. The emulator stops
// as soon as every device got its deployment instructions; the artifact comes through the
// gateway's cache (origin: the S3 store, still up), the statuses go to the journal; once the
// emulator is back they reach it in order, each once, and so does the newest inventory.

const CLIENTS = 3;
const scenario = outageScenario('outage-update');

before(() => scenario.start());
after(() => scenario.stop());

test(`${CLIENTS} real clients update while the server is down; their statuses arrive in order once it is back`, {
  timeout: 150_000,
}, async (t) => {
  const { server, artifact, gateway } = scenario;
  // A long poll interval: the update check is forced with SIGUSR1, every device at once.
  const fleet = await scenario.startFleet({ count: CLIENTS, macPrefix: '02:00:00:10', updatePollSeconds: 60 });
  const ids = await waitForFleetOnline(fleet, server, 60_000);
  const { id: deploymentId } = server.createDeployment({ name: 'outage-update', artifactName: artifact.name, devices: ids });
  fleet.signalAll('SIGUSR1');
  await fleet.waitFor(() => ids.every((id) => nextServed(server, id)), 30_000, 'every device to fetch its deployment');
  await server.stop();
  const live = ids.map((id) => server.statuses(deploymentId, id).length);

  // Every device installs and reports success with the server down: the journal answered.
  await fleet.waitFor(() => fleet.logsMatching(FINISHED).length === CLIENTS, 60_000, 'every device to finish its update');
  const atServer = ids.map((id) => server.statuses(deploymentId, id).length);
  assert.deepEqual(atServer, live, 'the stopped server recorded nothing');
  const journaled = journaledCount(gateway.output());
  const statusesJournaled = CLIENTS * EXPECTED_STATUSES.length - live.reduce((a, b) => a + b, 0);
  t.diagnostic(
    `statuses that reached the server before it stopped: ${live.join(', ')}; journaled reports: ${journaled} (${statusesJournaled} statuses)`,
  );
  assert.ok(journaled >= statusesJournaled, `journaled ${journaled}, statuses owed ${statusesJournaled}`);

  await server.start();
  await fleet.waitFor(
    () => ids.every((id) => server.statuses(deploymentId, id).length >= EXPECTED_STATUSES.length),
    60_000,
    'every status at the server',
  );
  await new Promise((r) => setTimeout(r, 2000)); // time for a duplicate to show up
  assertFleetCompleted(scenario, fleet, { deploymentId, deviceIds: ids, elapsedMs: 0 });
  assertStatusesOnce(
    server,
    deploymentId,
    ids,
    EXPECTED_STATUSES,
    fleet.clients.map((c) => c.mac),
  );
  // The newest inventory (after the install) was replayed too.
  const inventory = new Map(server.devices().map((d) => [d.id, d.inventory]));
  for (const [i, id] of ids.entries())
    assert.equal(inventory.get(id)?.artifact_name, artifact.name, `inventory of ${fleet.clients[i]!.mac}`);
  assert.deepEqual(
    fleet.logsMatching(/retry-report|report-retry/).map((c) => c.mac),
    [],
    'a device had to retry a report',
  );
});
