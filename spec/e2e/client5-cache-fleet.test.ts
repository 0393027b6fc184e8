import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CLIENT5_RETRY, CLIENT5_STATUSES, client5Unavailable } from '../support/client5-fleet';
import { deployToFleet } from '../support/fleet-deployment';
import { assertFleetCompleted, cacheGatewayConfig, e2eScenario } from '../support/e2e-scenario';

// 8 Mender client 5.1 devices update at once through the gateway with
// the artifact cache on; the store, throttled so the downloads overlap the fill, sends the
// artifact once.

const CLIENTS = 8;
const unavailable = client5Unavailable();

const scenario = e2eScenario({
  dirPrefix: 'e2e-c5-cache-',
  tls: 'split',
  store: { throttleBytesPerSecond: 512 * 1024 },
  server: { autoAccept: true },
  artifact: { name: 'e2e-c5-cache-1', payloadBytes: 1024 * 1024, seed: 'c5-cache' },
  gatewayConfig: cacheGatewayConfig,
});

before(() => (unavailable ? undefined : scenario.start()));
after(() => scenario.stop());

test(`${CLIENTS} client 5.1 devices update through the cache; the store sends the artifact once`, {
  timeout: 150_000,
  skip: unavailable ?? false,
}, async (t) => {
  const { dir, server, store, artifact, gateway } = scenario;
  const bytesBefore = store.totalBytesServed();
  const getsBefore = store.requestLog.length;
  const fleet = await scenario.startClient5Fleet({ count: CLIENTS, macPrefix: '02:00:00:51' });
  const run = await deployToFleet(fleet, server, artifact.name, 90_000);
  t.diagnostic(`deployment to ${CLIENTS} client 5.1 devices: every device done ${run.elapsedMs} ms after it was created`);
  assertFleetCompleted(scenario, fleet, run, { statuses: CLIENT5_STATUSES });
  const artifactGets = store.requestLog.slice(getsBefore).filter((r) => r.method === 'GET' && r.status < 300);
  assert.equal(artifactGets.length, 1, `store requests: ${JSON.stringify(artifactGets)}`);
  const sent = store.totalBytesServed() - bytesBefore;
  assert.ok(sent <= 1.1 * artifact.size, `the store sent ${sent} bytes for a ${artifact.size}-byte artifact`);
  assert.equal(readdirSync(join(dir, 'cache', 'v1', 'objects')).filter((n) => n.endsWith('.json')).length, 1);
  assert.deepEqual(
    fleet.logsMatching(CLIENT5_RETRY).map((c) => `${c.mac}\n${c.logTail()}`),
    [],
  );
  // Client 5.1 on the wire, as the emulator saw it through the gateway (3.4: Go-http-client/1.1,
  // Accept-Encoding: gzip, no Accept).
  const apiCall = server.calls.find((c) => c.deviceId === run.deviceIds[0] && /\/inventory\/device\/attributes$/.test(c.path))!;
  t.diagnostic(
    `client 5.1 API call headers at the emulator: user-agent=${apiCall.headers['user-agent']} accept=${apiCall.headers.accept} accept-encoding=${apiCall.headers['accept-encoding'] ?? '(none)'}`,
  );
  assert.equal(apiCall.headers['user-agent'], 'Mender/5.1.0');
  assert.equal(apiCall.headers.accept, 'application/json');
  const logged = gateway.output();
  assert.match(logged, /msg="artifact cached"/);
  assert.doesNotMatch(logged, /X-Amz-Signature=[0-9a-f]/i, 'a presigned signature appears in the gateway log');
});
