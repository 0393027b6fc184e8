import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CLIENT5_FINISHED, CLIENT5_STATUSES, client5Unavailable } from '../support/client5-fleet';
import { waitForFleetOnline } from '../support/fleet-deployment';
import { assertFleetCompleted } from '../support/e2e-scenario';
import { assertStatusesOnce, journaledCount, nextServed, outageScenario } from './outage-scenario';

// Uplink down with client 5.1: the emulator stops as soon as every device got its
// deployment instructions; the artifact comes from the gateway's cache, the statuses and the
// failed device's deployment log go to the journal. Once the emulator is back, each reaches it
// once, in order. One device is made to fail (its install target is a file, so the single-file
// module cannot make the directory): client 5 uploads a deployment log only on failure.

const GOOD = 2;
const unavailable = client5Unavailable();
const scenario = outageScenario('c5-outage');

before(() => (unavailable ? undefined : scenario.start()));
after(() => scenario.stop());

test(`client 5.1 devices update while the server is down (${GOOD} succeed, 1 fails); statuses and the log arrive once it is back`, {
  timeout: 150_000,
  skip: unavailable ?? false,
}, async (t) => {
  const { server, artifact, gateway } = scenario;
  // A long poll interval: the update check is forced with SIGUSR1, every device at once. Log
  // level info: at debug, client 5.1 appends its own lines about the log upload to the log file
  // it is uploading, and the body ends short of its Content-Length (invalid JSON, 400 upstream).
  const fleet = await scenario.startClient5Fleet({ count: GOOD + 1, macPrefix: '02:00:00:59', pollSeconds: 60, logLevel: 'info' });
  const failing = fleet.clients[GOOD]!;
  writeFileSync(join(failing.dataDir, 'dest'), 'not a directory\n');
  const ids = await waitForFleetOnline(fleet, server, 60_000);
  const { id: deploymentId } = server.createDeployment({ name: 'c5-outage', artifactName: artifact.name, devices: ids });
  await fleet.kick('update');
  await fleet.waitFor(() => ids.every((id) => nextServed(server, id)), 30_000, 'every device to fetch its deployment');
  await server.stop();
  const live = ids.map((id) => server.statuses(deploymentId, id).length);

  await fleet.waitFor(
    () => fleet.logsMatching(CLIENT5_FINISHED).length === fleet.clients.length,
    60_000,
    'every device to finish its deployment',
  );
  assert.deepEqual(
    ids.map((id) => server.statuses(deploymentId, id).length),
    live,
    'the stopped server recorded nothing',
  );
  assert.deepEqual(server.deploymentLogs(deploymentId, ids[GOOD]!), [], 'the stopped server recorded a log');
  t.diagnostic(
    `statuses that reached the server before it stopped: ${live.join(', ')}; reports journaled: ${journaledCount(gateway.output())}`,
  );

  // Client 5.1 sends its inventory on its own timer (here 60 s), not right after an update as
  // 3.4 does: ask for it now, with the server still down, so the journal takes it too.
  const journaledBefore = journaledCount(gateway.output());
  await fleet.kick('inventory');
  // (The failed device's inventory has not changed: client 5 does not send it again.)
  await fleet.waitFor(
    () => journaledCount(gateway.output()) >= journaledBefore + GOOD,
    20_000,
    "the updated devices' inventories journaled",
  );

  await server.start();
  const failureStatuses = ['downloading', 'installing', 'failure'];
  await fleet
    .waitFor(
      () =>
        ids.slice(0, GOOD).every((id) => server.statuses(deploymentId, id).length >= CLIENT5_STATUSES.length) &&
        server.statuses(deploymentId, ids[GOOD]!).at(-1) === 'failure' &&
        server.deploymentLogs(deploymentId, ids[GOOD]!).length > 0 &&
        ids.slice(0, GOOD).every((id) => server.devices().find((d) => d.id === id)?.inventory.artifact_name === artifact.name),
      60_000,
      'every status and the log at the server',
    )
    .catch((err: Error) => {
      const state = ids.map(
        (id) => `${server.statuses(deploymentId, id).join(',')} (logs ${server.deploymentLogs(deploymentId, id).length})`,
      );
      throw new Error(
        `at the server: ${state.join('; ')}; gateway:\n${gateway
          .output()
          .split('\n')
          .filter((l) => /journal|replay/.test(l))
          .slice(-15)
          .join('\n')}\n${err.message}`,
      );
    });
  await new Promise((r) => setTimeout(r, 2000)); // time for a duplicate to show up
  const goodIds = ids.slice(0, GOOD);
  assertFleetCompleted(
    scenario,
    { clients: fleet.clients.slice(0, GOOD) },
    { deploymentId, deviceIds: goodIds, elapsedMs: 0 },
    { statuses: CLIENT5_STATUSES },
  );
  assertStatusesOnce(
    server,
    deploymentId,
    goodIds,
    CLIENT5_STATUSES,
    fleet.clients.slice(0, GOOD).map((c) => c.mac),
  );
  t.diagnostic(`failed device's statuses: ${server.statuses(deploymentId, ids[GOOD]!).join(', ')}`);
  assertStatusesOnce(server, deploymentId, [ids[GOOD]!], failureStatuses, [failing.mac]);
  const logPath = `/api/devices/v1/deployments/device/deployments/${deploymentId}/log`;
  const logUploads = server.calls.filter((c) => c.deviceId === ids[GOOD] && c.method === 'PUT' && c.path === logPath && c.status === 204);
  assert.equal(logUploads.length, 1, 'the failed deployment log arrived once');
  const messages = server.deploymentLogs(deploymentId, ids[GOOD]!) as { message: string }[];
  assert.ok(
    messages.some((m) => /Deployment with ID \S+ started/.test(m.message)),
    JSON.stringify(messages).slice(0, 2000),
  );
  t.diagnostic(`failed device's log: ${messages.length} messages, delivered by the journal`);
  const inventory = new Map(server.devices().map((d) => [d.id, d.inventory]));
  for (const [i, id] of goodIds.entries())
    assert.equal(inventory.get(id)?.artifact_name, artifact.name, `inventory of ${fleet.clients[i]!.mac}`);
  // Client 5.1 authenticates again before ArtifactCommit: the gateway gave back the token upstream
  // had issued (without it: "Retrying status update after 60 seconds").
  const reissued = (gateway.output().match(/msg="upstream unreachable: device given the token upstream last issued it"/g) ?? []).length;
  t.diagnostic(`auth requests answered with the last issued token during the outage: ${reissued}`);
  assert.ok(reissued >= GOOD, `tokens given back: ${reissued}`);
  assert.doesNotMatch(gateway.output(), /eyJ[\w-]{10,}\.[\w-]{10,}/, 'a JWT appears in the gateway log');
  assert.deepEqual(
    fleet.logsMatching(/Retrying status update/).map((c) => c.mac),
    [],
    'a device had to retry a report',
  );
});
