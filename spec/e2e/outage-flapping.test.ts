import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { waitForFleetOnline } from '../support/fleet-deployment';
import { assertFleetCompleted, EXPECTED_STATUSES } from '../support/e2e-scenario';
import { assertStatusesOnce, FINISHED, journaledCount, outageScenario } from './outage-scenario';

// The Mender server comes and goes every few seconds during a fleet update. Every
// status the devices sent reaches it once, in order: 0 lost, 0 duplicates.

const CLIENTS = 4;
const DOWN_MS = 1500;
const UP_MS = 1000;
// A 2 s download (512 KiB at 256 KiB/s): the update spans several outages. Two worker
// processes: the reports reach the journal (the primary's) over IPC.
const scenario = outageScenario('outage-flapping', 2, 256 * 1024);

before(() => scenario.start());
after(() => scenario.stop());

test(`${CLIENTS} real clients update while the server flaps (${DOWN_MS / 1000} s down, ${UP_MS / 1000} s up): 0 lost reports, 0 duplicates`, {
  timeout: 180_000,
}, async (t) => {
  const { server, artifact, gateway } = scenario;
  const fleet = await scenario.startFleet({ count: CLIENTS, macPrefix: '02:00:00:11' });
  const ids = await waitForFleetOnline(fleet, server, 60_000);
  const { id: deploymentId } = server.createDeployment({ name: 'outage-flapping', artifactName: artifact.name, devices: ids });

  let flapping = true;
  let outages = 0;
  const flap = (async () => {
    while (flapping) {
      await new Promise((r) => setTimeout(r, UP_MS));
      if (!flapping) break;
      await server.stop();
      outages++;
      await new Promise((r) => setTimeout(r, DOWN_MS));
      await server.start();
    }
  })();
  try {
    await fleet.waitFor(() => fleet.logsMatching(FINISHED).length === CLIENTS, 120_000, 'every device to finish its update');
  } finally {
    flapping = false;
    await flap;
  }
  await server.start();
  const journaled = journaledCount(gateway.output());
  const workers = new Set([...gateway.output().matchAll(/route=deployment-status[^\n]* worker=(\d+)\n/g)].map((m) => m[1]));
  t.diagnostic(`${outages} outages; ${journaled} reports went through the journal; workers that took reports: ${[...workers].join(', ')}`);
  assert.match(gateway.output(), /msg="report journal kept by the cluster primary for every worker"/);
  // Usually 3–8 outages hit the update; on a fast run one (the journal count shows it mattered).
  assert.ok(outages >= 1, `outages during the update: ${outages}`);
  assert.ok(journaled > 0, 'no report was journaled: the outages missed the update');

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
  assert.deepEqual(
    fleet.logsMatching(/retry-report|report-retry/).map((c) => c.mac),
    [],
    'a device had to retry a report',
  );
});
