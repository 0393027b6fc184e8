import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { deployToFleet, RETRY_STATES } from '../support/fleet-deployment';
import { assertFleetCompleted, e2eScenario } from '../support/e2e-scenario';

// Real clients → gateway (HTTPS, its certificate trusted via ServerCertificate) → emulator
// (HTTPS, trusted by the gateway via UpstreamServer.CACertificate). The artifact proxy is off:
// devices fetch the presigned link from the store themselves.

// E2E_CLIENTS scales the fleet for a manual run (e.g. 50); CI uses the default.
const CLIENTS = Number(process.env.E2E_CLIENTS ?? 12);

// Two unrelated CAs: the devices can only trust the gateway, the gateway only the emulator.
const scenario = e2eScenario({
  dirPrefix: 'e2e-gateway-',
  tls: 'split',
  server: { autoAccept: true },
  artifact: { name: 'e2e-gateway-1', payloadBytes: 1024 * 1024, seed: 'gateway' },
  gatewayConfig: ({ gatewayTls, upstreamTls, server }) => ({
    HTTPS: {
      Enabled: true,
      Listen: '127.0.0.1:0',
      ServerCertificate: gatewayTls.server.cert,
      ServerKey: gatewayTls.server.key,
    },
    HTTP: { Enabled: false },
    UpstreamServer: { URL: server.url, CACertificate: upstreamTls.ca.cert },
    Features: { ArtifactsProxy: { Enabled: false } },
  }),
});

before(() => scenario.start());
after(() => scenario.stop());

test(`${CLIENTS} real clients complete a deployment through the gateway`, { timeout: 150_000 }, async () => {
  const { server, store, artifact, gateway } = scenario;
  const bytesBefore = store.totalBytesServed();
  const fleet = await scenario.startFleet({ count: CLIENTS, macPrefix: '02:00:00:02' });
  const run = await deployToFleet(fleet, server, artifact.name, 90_000);

  assertFleetCompleted(scenario, fleet, run, {
    alsoPerDevice(client, id) {
      // auth (twice: start and ArtifactCommit), inventory, next, status all reached the emulator via the gateway.
      const paths = server.calls.filter((c) => c.deviceId === id).map((c) => `${c.method} ${c.path.split('?')[0]}`);
      for (const expected of [
        'PUT /api/devices/v1/inventory/device/attributes',
        `PUT /api/devices/v1/deployments/device/deployments/${run.deploymentId}/status`,
      ])
        assert.ok(paths.includes(expected), `${client.mac} never sent ${expected}: ${paths.join(', ')}`);
      assert.ok(
        paths.some((p) => p.endsWith('/deployments/device/deployments/next')),
        `${client.mac} never polled next`,
      );
    },
  });
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
  assert.deepEqual(
    fleet.logsMatching(RETRY_STATES).map((c) => `${c.mac}\n${c.logTail()}`),
    [],
  );
  // Device JWTs and the presigned links' signatures crossed the gateway; none may be logged.
  const logged = gateway.output();
  assert.match(logged, /msg="request".*auth_requests/, 'the gateway did not log device requests');
  assert.doesNotMatch(logged, /eyJ[\w-]{10,}\.[\w-]{10,}/, 'a JWT appears in the gateway log');
  assert.doesNotMatch(logged, /X-Amz-Signature=[0-9a-f]/i, 'a presigned signature appears in the gateway log');
  console.log(
    `through gateway: ${CLIENTS} clients updated in ${run.elapsedMs} ms (fast start: ${fleet.fastCerts ? 'yes' : fleet.fastCertsNote})`,
  );
});
