import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { makeDeviceCert } from '../support/device-certs';
import { e2eScenario, mtlsGatewayConfig } from '../support/e2e-scenario';
import { menderConnectUnavailable, startMenderConnect, type MenderConnect } from '../support/mender-connect-process';
import { startPrivateBus, type PrivateBus } from '../support/private-bus';

// mender-connect over mTLS with Debian's mender 3.4: its local proxy, which mender-connect dials,
// presents the client certificate on the gateway's mTLS listener; the device is admitted by
// preauthorization and its remote shell answers.

const USER = { email: 'gateway@example.com', password: 'e2e-Connect34-pw' };
const unavailable = menderConnectUnavailable();

const scenario = e2eScenario({
  dirPrefix: 'e2e-connect34-mtls-',
  tls: 'shared',
  emulatorTls: false,
  server: { autoAccept: false, users: [USER] },
  artifact: { name: 'e2e-connect34-mtls-1', payloadBytes: 16 * 1024, seed: 'connect34-mtls' },
  gatewayConfig: (s) => mtlsGatewayConfig(s, USER),
});

let bus: PrivateBus | undefined;
let connect: MenderConnect | undefined;
before(() => (unavailable ? undefined : scenario.start()));
after(async () => {
  await connect?.stop();
  await scenario.stop();
  await bus?.stop();
});

test('mender-connect beside mender 3.4 on the mTLS listener: admitted by certificate, its remote shell answers', {
  timeout: 120_000,
  skip: unavailable ?? false,
}, async (t) => {
  const { server, gatewayTls: tls, dir } = scenario;
  bus = await startPrivateBus(mkdtempSync(join(dir, 'bus-')));
  const cert = makeDeviceCert(tls.dir, 'connect34-mtls-device', tls.ca, { keyType: 'ec' });
  const fleet = await scenario.startFleet({ count: 1, macPrefix: '02:00:00:65', dbusAddress: bus.address, clientCert: () => cert });
  const client = fleet.clients[0];
  await fleet.waitFor(
    () => server.devices().some((d) => d.identity.mac === client.identity.mac && d.status === 'accepted'),
    45_000,
    'the device admitted by preauthorization',
  );
  const id = server.deviceByIdentity(client.identity)!.id;
  connect = startMenderConnect({ dir: mkdtempSync(join(dir, 'connect-')), busAddress: bus.address });
  await server.deviceconnect.waitForDevice(id, 45_000).catch((err: Error) => {
    throw new Error(`${err.message}\n[mender-connect]\n${connect!.logTail()}\n${client.logTail()}`);
  });
  const { shell } = await server.deviceconnect.openLiveShell(id);
  assert.equal((await shell.run('echo "mtls34-$((40+2))"')).trim(), 'mtls34-42');
  shell.close();
  const upgrade = server.calls.find((c) => c.deviceId === id && c.path.endsWith('/deviceconnect/connect'));
  assert.equal(upgrade?.status, 101);
  t.diagnostic(`mender-connect beside 3.4 on the mTLS listener: upgrade ${upgrade?.status}, user-agent ${upgrade?.headers['user-agent']}`);
});
