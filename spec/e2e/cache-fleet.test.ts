import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { deployToFleet, RETRY_STATES } from '../support/fleet-deployment';
import { assertFleetCompleted, cacheGatewayConfig, e2eScenario } from '../support/e2e-scenario';

// The artifact cache end to end: real clients update through the gateway with the artifact cache on;
// the store, throttled so the devices' downloads overlap the fill, counts one download.

const CLIENTS = 8;

const scenario = e2eScenario({
  dirPrefix: 'e2e-cache-',
  tls: 'split',
  store: { throttleBytesPerSecond: 512 * 1024 },
  server: { autoAccept: true },
  artifact: { name: 'e2e-cache-1', payloadBytes: 1024 * 1024, seed: 'cache' },
  gatewayConfig: cacheGatewayConfig,
});

before(() => scenario.start());
after(() => scenario.stop());

test(`${CLIENTS} real clients update through the cache; the store counts one download`, { timeout: 150_000 }, async () => {
  const { dir, server, store, artifact, gateway } = scenario;
  const bytesBefore = store.totalBytesServed();
  const getsBefore = store.requestLog.length;
  const fleet = await scenario.startFleet({ count: CLIENTS, macPrefix: '02:00:00:07' });
  const run = await deployToFleet(fleet, server, artifact.name, 90_000);
  assertFleetCompleted(scenario, fleet, run);
  const artifactGets = store.requestLog.slice(getsBefore).filter((r) => r.method === 'GET' && r.status < 300);
  assert.equal(artifactGets.length, 1, `store requests: ${JSON.stringify(artifactGets)}`);
  assert.equal(artifactGets[0]!.range, undefined);
  assert.equal(store.totalBytesServed() - bytesBefore, artifact.size);
  // The entry is on disk, published once.
  assert.equal(readdirSync(join(dir, 'cache', 'v1', 'objects')).filter((n) => n.endsWith('.json')).length, 1);
  assert.deepEqual(
    fleet.logsMatching(RETRY_STATES).map((c) => `${c.mac}\n${c.logTail()}`),
    [],
  );
  const logged = gateway.output();
  assert.match(logged, /msg="artifact cached"/);
  assert.doesNotMatch(logged, /X-Amz-Signature=[0-9a-f]/i, 'a presigned signature appears in the gateway log');
});
