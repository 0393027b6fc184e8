import assert from 'node:assert/strict';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { deployToFleet, RETRY_STATES } from '../support/fleet-deployment';
import { makeDeviceCert, makeRogueCa, type DeviceCert } from '../support/device-certs';
import { assertFleetCompleted, e2eScenario, mtlsGatewayConfig } from '../support/e2e-scenario';

// mTLS with real mender 3.4 clients: the emulator leaves devices pending (no auto-accept,
// nobody accepts them); devices with CA-signed RSA 3072, P-256 and Ed25519 certificates are
// preauthorized by the gateway with their own keys and complete a deployment. Devices with a
// rogue-CA, expired, blocklisted or no certificate, and one blocklisted while running, never
// reach the emulator's auth endpoint again.

const KEY_TYPES = ['rsa', 'ec', 'ed25519'] as const;
const AUTH = '/api/devices/v1/authentication/auth_requests';
const USER = { email: 'gateway@example.com', password: 'e2e-Gateway-pw' };

let blocklist: string;
// One CA signs the gateway's server certificate and the devices' certificates (the docs' setup).
const scenario = e2eScenario({
  dirPrefix: 'e2e-mtls-',
  tls: 'shared',
  emulatorTls: false,
  server: { autoAccept: false, users: [USER] },
  artifact: { name: 'e2e-mtls-1', payloadBytes: 256 * 1024, seed: 'mtls' },
  gatewayConfig: (s) => {
    const { dir } = s;
    blocklist = join(dir, 'blacklist.txt');
    writeFileSync(blocklist, '# revoked\n0x00:0b:1a:57\n');
    return mtlsGatewayConfig(s, USER, blocklist);
  },
});

before(() => scenario.start());
after(() => scenario.stop());

const authCallsFrom = (mac: string) =>
  scenario.server.calls.filter((c) => c.path === AUTH && scenario.server.deviceByIdentity({ mac })?.id === c.deviceId).length;

test('devices with CA-signed RSA 3072, P-256 and Ed25519 certificates are admitted with no manual acceptance and complete an update', {
  timeout: 150_000,
}, async () => {
  const { server, gatewayTls: tls, artifact, gateway } = scenario;
  const certs: DeviceCert[] = KEY_TYPES.map((keyType) => makeDeviceCert(tls.dir, `device-${keyType}`, tls.ca, { keyType }));
  const fleet = await scenario.startFleet({
    count: KEY_TYPES.length,
    macPrefix: '02:00:00:66',
    clientCert: (i) => ({ cert: certs[i].cert, key: certs[i].key }),
  });
  const run = await deployToFleet(fleet, server, artifact.name, 90_000);
  const byId = new Map(server.devices().map((d) => [d.id, d]));
  assertFleetCompleted(scenario, fleet, run, {
    label: (client, i) => `${KEY_TYPES[i]} device ${client.mac}`,
    alsoPerDevice(client, id) {
      // Preauthorized with its own key (the HttpsClient key is the auth key): created without
      // force (201), found holding that very key on any later preauthorization (409), never forced.
      const preauth = server.preauthorizations.filter((p) => p.identity.mac === client.mac);
      assert.ok(preauth.length >= 1, `${client.mac} was never preauthorized`);
      assert.ok(
        preauth[0].status === 201 &&
          preauth.every((p) => !p.force && (p.status === 201 || p.status === 409) && p.pubkey === client.publicKeyPem),
        `${client.mac}: ${JSON.stringify(preauth)}`,
      );
      assert.deepEqual(byId.get(id)!.pubkeys, [client.publicKeyPem]);
    },
  });
  assert.equal(server.logins.length, 1, 'one management login for the whole fleet');
  assert.deepEqual(
    fleet.logsMatching(RETRY_STATES).map((c) => `${c.mac}\n${c.logTail()}`),
    [],
  );
  const logged = gateway.output();
  assert.doesNotMatch(logged, new RegExp(USER.password));
  assert.doesNotMatch(logged, /eyJ[\w-]{10,}\.[\w-]{10,}/, 'a JWT appears in the gateway log');
});

test('rogue-CA, expired, blocklisted and certificate-less devices are refused; so is one blocklisted while running', {
  timeout: 120_000,
}, async () => {
  const { server, gatewayTls: tls, gateway } = scenario;
  const rogueCa = makeRogueCa(tls.dir, 'e2e-rogue-ca');
  const refused: (DeviceCert | undefined)[] = [
    makeDeviceCert(tls.dir, 'rogue-device', rogueCa),
    makeDeviceCert(tls.dir, 'expired-device', tls.ca, { fromDays: -60, toDays: -1 }),
    makeDeviceCert(tls.dir, 'listed-device', tls.ca, { serial: 'B1A57' }),
    undefined,
  ];
  const later = makeDeviceCert(tls.dir, 'later-device', tls.ca, { serial: '7E57AB1E' });
  const authBefore = server.calls.filter((c) => c.path === AUTH).length;
  const badFleet = await scenario.startFleet({
    count: refused.length,
    macPrefix: '02:00:00:67',
    clientCert: (i) => refused[i] && { cert: refused[i]!.cert, key: refused[i]!.key },
  });
  const goodFleet = await scenario.startFleet({
    count: 1,
    macPrefix: '02:00:00:68',
    clientCert: () => ({ cert: later.cert, key: later.key }),
  });
  const laterMac = goodFleet.clients[0].mac;
  await goodFleet.waitFor(
    () => server.devices().some((d) => d.identity.mac === laterMac && d.status === 'accepted'),
    60_000,
    'the later-listed device to be admitted',
  );
  // Every refused client has tried and failed at least twice by now.
  await badFleet.waitFor(
    () => badFleet.clients.every((c) => (c.logTail(200).match(/authoriz|certificate|SSL/gi) ?? []).length >= 2),
    60_000,
    'refused clients to have tried',
  );

  appendFileSync(blocklist, '7e:57:ab:1e\n');
  const deadline = Date.now() + 10_000;
  while (!/blocklist reloaded/.test(gateway.output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.match(gateway.output(), /blocklist reloaded/);
  const callsAtRevocation = server.calls.filter((c) => c.deviceId === server.deviceByIdentity({ mac: laterMac })?.id).length;
  await new Promise((r) => setTimeout(r, 8000));

  for (const client of badFleet.clients) {
    assert.equal(
      server.deviceByIdentity(client.identity),
      undefined,
      `refused device ${client.mac} reached the emulator\n${client.logTail()}`,
    );
  }
  assert.equal(
    server.calls.filter((c) => c.path === AUTH).length - authBefore,
    authCallsFrom(laterMac),
    'only the later-listed device ever authenticated',
  );
  const laterId = server.deviceByIdentity({ mac: laterMac })!.id;
  assert.equal(
    server.calls.filter((c) => c.deviceId === laterId).length,
    callsAtRevocation,
    'nothing from the revoked device reached the emulator after the reload',
  );
  assert.match(gateway.output(), /request refused: client certificate.*blocklisted/);
  for (const reason of ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_HAS_EXPIRED', 'no client certificate']) {
    assert.match(gateway.output(), new RegExp(`TLS client refused.*${reason}`));
  }
});
