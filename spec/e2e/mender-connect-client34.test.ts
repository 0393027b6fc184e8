import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { cacheGatewayConfig, e2eScenario } from '../support/e2e-scenario';
import { menderConnectUnavailable, startMenderConnect, uploadedFile, type MenderConnect } from '../support/mender-connect-process';
import { startPrivateBus, type PrivateBus } from '../support/private-bus';

// mender-connect with Debian's mender 3.4: mender-connect takes the JWT and the client's local
// proxy URL over a private system bus, and its WebSocket goes through that proxy and the gateway's
// HTTPS listener to the emulator's deviceconnect; a shell command and a file round trip work.

const unavailable = menderConnectUnavailable();

const scenario = e2eScenario({
  dirPrefix: 'e2e-connect34-',
  tls: 'split',
  server: { autoAccept: true },
  artifact: { name: 'e2e-connect34-1', payloadBytes: 16 * 1024, seed: 'connect34' },
  gatewayConfig: cacheGatewayConfig,
});

let bus: PrivateBus | undefined;
let connect: MenderConnect | undefined;
before(() => (unavailable ? undefined : scenario.start()));
after(async () => {
  await connect?.stop();
  await scenario.stop();
  await bus?.stop();
});

test('mender-connect beside mender 3.4 through the HTTPS listener: a shell command and a file up and back', {
  timeout: 120_000,
  skip: unavailable ?? false,
}, async (t) => {
  const { server, dir } = scenario;
  bus = await startPrivateBus(mkdtempSync(join(dir, 'bus-')));
  const fleet = await scenario.startFleet({ count: 1, macPrefix: '02:00:00:64', dbusAddress: bus.address });
  const client = fleet.clients[0];
  await fleet.waitFor(() => server.deviceByIdentity(client.identity) !== undefined, 30_000, 'the device authenticated through the gateway');
  const id = server.deviceByIdentity(client.identity)!.id;
  connect = startMenderConnect({ dir: mkdtempSync(join(dir, 'connect-')), busAddress: bus.address });
  await server.deviceconnect.waitForDevice(id, 45_000).catch((err: Error) => {
    throw new Error(`${err.message}\n[mender-connect]\n${connect!.logTail()}\n${client.logTail()}`);
  });
  const upgrade = server.calls.find((c) => c.deviceId === id && c.path.endsWith('/deviceconnect/connect'));
  t.diagnostic(`mender-connect beside 3.4: upgrade ${upgrade?.status}, user-agent ${upgrade?.headers['user-agent'] ?? '(none)'}`);
  const { shell } = await server.deviceconnect.openLiveShell(id);
  assert.equal((await shell.run('echo "v34-$((40+2))"')).trim(), 'v34-42');
  shell.close();
  const data = randomBytes(100 * 1024 + 3);
  const path = join(dir, 'up34.bin');
  await server.deviceconnect.uploadFile(id, path, data);
  assert.ok((await uploadedFile(path)).equals(data));
  assert.ok((await server.deviceconnect.downloadFile(id, path)).equals(data));
});
