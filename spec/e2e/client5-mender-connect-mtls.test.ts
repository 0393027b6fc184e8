import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { client5Unavailable } from '../support/client5-fleet';
import { makeDeviceCert } from '../support/device-certs';
import { e2eScenario, mtlsGatewayConfig } from '../support/e2e-scenario';
import { menderConnectUnavailable, startMenderConnect, type MenderConnect } from '../support/mender-connect-process';

// mender-connect over mTLS: mender-connect dials deviceconnect through mender-auth's local forwarder,
// which presents the device's client certificate on the gateway's mTLS listener. The emulator
// accepts nobody by itself: the device is admitted by the gateway's preauthorization, and its
// remote shell works through the same listener.

const USER = { email: 'gateway@example.com', password: 'e2e-Connect-pw5' };
const unavailable = client5Unavailable() ?? menderConnectUnavailable();

const scenario = e2eScenario({
  dirPrefix: 'e2e-connect-mtls-',
  tls: 'shared',
  emulatorTls: false,
  server: { autoAccept: false, users: [USER] },
  artifact: { name: 'e2e-connect-mtls-1', payloadBytes: 16 * 1024, seed: 'connect-mtls' },
  gatewayConfig: (s) => mtlsGatewayConfig(s, USER),
});

let connect: MenderConnect | undefined;
before(() => (unavailable ? undefined : scenario.start()));
after(async () => {
  await connect?.stop();
  await scenario.stop();
});

test('mender-connect beside client 5.1 on the mTLS listener: the device is admitted by certificate and its remote shell answers', {
  timeout: 120_000,
  skip: unavailable ?? false,
}, async (t) => {
  const { server, gatewayTls: tls, gateway } = scenario;
  const cert = makeDeviceCert(tls.dir, 'connect-mtls-device', tls.ca, { keyType: 'ec' });
  const fleet = await scenario.startClient5Fleet({ count: 1, macPrefix: '02:00:00:63', clientCert: () => cert });
  const client = fleet.clients[0];
  await fleet.waitFor(
    () => server.devices().some((d) => d.identity.mac === client.mac && d.status === 'accepted'),
    45_000,
    'the device admitted by preauthorization',
  );
  const id = server.deviceByIdentity(client.identity)!.id;
  connect = startMenderConnect({ dir: client.dir, busAddress: client.busAddress() });
  await server.deviceconnect.waitForDevice(id, 45_000).catch((err: Error) => {
    throw new Error(`${err.message}\n[mender-connect]\n${connect!.logTail()}\n${client.logTail()}`);
  });
  const { shell } = await server.deviceconnect.openLiveShell(id);
  assert.equal((await shell.run('echo "mtls-$((40+2))"')).trim(), 'mtls-42');
  shell.close();
  // The upgrade came through the mTLS listener (the only listener: it requires the certificate),
  // and the device was admitted by preauthorization, not by hand.
  const upgrade = server.calls.find((c) => c.deviceId === id && c.path.endsWith('/deviceconnect/connect'));
  assert.equal(upgrade?.status, 101);
  assert.equal(server.preauthorizations.filter((p) => p.identity.mac === client.mac && p.status === 201).length >= 1, true);
  t.diagnostic(`deviceconnect upgrade through the mTLS listener: ${upgrade?.status}, user-agent ${upgrade?.headers['user-agent']}`);
  assert.match(gateway.output(), /deviceconnect\/connect/);
});
