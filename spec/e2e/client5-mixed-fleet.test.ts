import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CLIENT5_RETRY, CLIENT5_STATUSES, client5Unavailable } from '../support/client5-fleet';
import { deployToFleet, RETRY_STATES, type DeviceFleet } from '../support/fleet-deployment';
import { assertFleetCompleted, cacheGatewayConfig, e2eScenario, EXPECTED_STATUSES } from '../support/e2e-scenario';

// Mixed fleet (docs/clients.md): Debian's mender 3.4 and Mender client 5.1 devices get the same
// deployment at once through the gateway's cache: both kinds install it, the store sends the
// artifact once.

const OLD = 3;
const NEW = 3;
const unavailable = client5Unavailable();

const scenario = e2eScenario({
  dirPrefix: 'e2e-c5-mixed-',
  tls: 'split',
  store: { throttleBytesPerSecond: 512 * 1024 },
  server: { autoAccept: true },
  artifact: { name: 'e2e-c5-mixed-1', payloadBytes: 1024 * 1024, seed: 'c5-mixed' },
  gatewayConfig: cacheGatewayConfig,
});

before(() => (unavailable ? undefined : scenario.start()));
after(() => scenario.stop());

test(`a mixed fleet (${OLD} mender 3.4, ${NEW} client 5.1) updates at once through the cache: one store download`, {
  timeout: 150_000,
  skip: unavailable ?? false,
}, async (t) => {
  const { server, store, artifact } = scenario;
  const bytesBefore = store.totalBytesServed();
  const getsBefore = store.requestLog.length;
  const old = await scenario.startFleet({ count: OLD, macPrefix: '02:00:00:34' });
  const fresh = await scenario.startClient5Fleet({ count: NEW, macPrefix: '02:00:00:5a' });
  // One deployment for both: each fleet's waitFor watches its own processes for an early death.
  const mixed: DeviceFleet = {
    clients: [...old.clients, ...fresh.clients],
    waitFor: async (predicate, ms, what) => {
      await Promise.all([old.waitFor(predicate, ms, what), fresh.waitFor(predicate, ms, what)]);
    },
  };
  const run = await deployToFleet(mixed, server, artifact.name, 90_000);
  t.diagnostic(`mixed deployment: every device done ${run.elapsedMs} ms after it was created`);
  const part = (from: number, to: number) => ({ ...run, deviceIds: run.deviceIds.slice(from, to) });
  assertFleetCompleted(scenario, old, part(0, OLD));
  assertFleetCompleted(scenario, fresh, part(OLD, OLD + NEW), { statuses: CLIENT5_STATUSES });
  assert.deepEqual(server.statuses(run.deploymentId, run.deviceIds[0]!), EXPECTED_STATUSES);

  const artifactGets = store.requestLog.slice(getsBefore).filter((r) => r.method === 'GET' && r.status < 300);
  assert.equal(artifactGets.length, 1, `store requests: ${JSON.stringify(artifactGets)}`);
  const sent = store.totalBytesServed() - bytesBefore;
  assert.ok(sent <= 1.1 * artifact.size, `the store sent ${sent} bytes for a ${artifact.size}-byte artifact`);
  assert.deepEqual(
    old.logsMatching(RETRY_STATES).map((c) => c.mac),
    [],
  );
  assert.deepEqual(
    fresh.logsMatching(CLIENT5_RETRY).map((c) => c.mac),
    [],
  );
  // What each kind sent on the wire, as the emulator saw it.
  const agents = new Set(server.calls.filter((c) => c.path.includes('/deployments/next')).map((c) => String(c.headers['user-agent'])));
  t.diagnostic(`user agents at the emulator: ${[...agents].join(', ')}`);
});
