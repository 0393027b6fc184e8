import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CLIENT5_RETRY, CLIENT5_STATUSES, client5Unavailable } from '../support/client5-fleet';
import { makeDeviceCert, makeRogueCa, type DeviceCert } from '../support/device-certs';
import { deployToFleet } from '../support/fleet-deployment';
import { assertFleetCompleted, e2eScenario, mtlsGatewayConfig } from '../support/e2e-scenario';

// Mender client 5.1 presenting its certificate on the mTLS listener: the
// emulator accepts nobody by itself; devices with CA-signed certificates (RSA 3072, P-256,
// Ed25519) are preauthorized by the gateway and update. Client 5 signs its auth requests with
// its own Ed25519 key, not the TLS key: that is the key preauthorized. A rogue-CA device is
// refused in the handshake, a blocklisted one gets 403 on every request: neither reaches the
// emulator.

const KEY_TYPES = ['rsa', 'ec', 'ed25519'] as const;
const AUTH = '/api/devices/v1/authentication/auth_requests';
const USER = { email: 'gateway@example.com', password: 'e2e-Gateway-pw5' };
const unavailable = client5Unavailable();

const scenario = e2eScenario({
  dirPrefix: 'e2e-c5-mtls-',
  tls: 'shared',
  emulatorTls: false,
  server: { autoAccept: false, users: [USER] },
  artifact: { name: 'e2e-c5-mtls-1', payloadBytes: 256 * 1024, seed: 'c5-mtls' },
  gatewayConfig: (s) => {
    const { dir } = s;
    const blocklist = join(dir, 'blacklist.txt');
    writeFileSync(blocklist, '# revoked\n0x0b:1a:57:05\n');
    return mtlsGatewayConfig(s, USER, blocklist);
  },
});

before(() => (unavailable ? undefined : scenario.start()));
after(() => scenario.stop());

const spki = (pem: string): string => createPublicKey(pem).export({ type: 'spki', format: 'pem' }).toString();

test('client 5.1 devices with CA-signed RSA, P-256 and Ed25519 certificates are admitted with no manual acceptance and update', {
  timeout: 120_000,
  skip: unavailable ?? false,
}, async () => {
  const { server, gatewayTls: tls, artifact, gateway } = scenario;
  const certs: DeviceCert[] = KEY_TYPES.map((keyType) => makeDeviceCert(tls.dir, `c5-device-${keyType}`, tls.ca, { keyType }));
  const fleet = await scenario.startClient5Fleet({ count: KEY_TYPES.length, macPrefix: '02:00:00:56', clientCert: (i) => certs[i] });
  const run = await deployToFleet(fleet, server, artifact.name, 90_000);
  const byId = new Map(server.devices().map((d) => [d.id, d]));
  assertFleetCompleted(scenario, fleet, run, {
    statuses: CLIENT5_STATUSES,
    label: (client, i) => `${KEY_TYPES[i]} device ${client.mac}`,
    alsoPerDevice(client, id) {
      const own = client.publicKeyPem();
      const preauth = server.preauthorizations.filter((p) => p.identity.mac === client.mac);
      assert.ok(preauth.length >= 1, `${client.mac} was never preauthorized`);
      // Created without force (201), found holding its own key on any later one (409), never forced.
      assert.ok(
        preauth[0].status === 201 && preauth.every((p) => !p.force && (p.status === 201 || p.status === 409) && spki(p.pubkey) === own),
        `${client.mac}: ${JSON.stringify(preauth)}`,
      );
      assert.deepEqual(byId.get(id)!.pubkeys.map(spki), [own]);
    },
  });
  assert.equal(server.logins.length, 1, 'one management login for the whole fleet');
  assert.deepEqual(
    fleet.logsMatching(CLIENT5_RETRY).map((c) => `${c.mac}\n${c.logTail()}`),
    [],
  );
  const logged = gateway.output();
  assert.doesNotMatch(logged, new RegExp(USER.password));
  assert.doesNotMatch(logged, /eyJ[\w-]{10,}\.[\w-]{10,}/, 'a JWT appears in the gateway log');
});

test('a rogue-CA client 5.1 device is refused in the handshake, a blocklisted one gets 403: neither reaches the emulator', {
  timeout: 90_000,
  skip: unavailable ?? false,
}, async (t) => {
  const { server, gatewayTls: tls, gateway } = scenario;
  const rogue = makeDeviceCert(tls.dir, 'c5-rogue-device', makeRogueCa(tls.dir, 'c5-rogue-ca'));
  const listed = makeDeviceCert(tls.dir, 'c5-listed-device', tls.ca, { serial: 'B1A5705' });
  const refused = [rogue, listed];
  const authBefore = server.calls.filter((c) => c.path === AUTH).length;
  const outputBefore = gateway.output().length;
  const fleet = await scenario.startClient5Fleet({
    count: refused.length,
    macPrefix: '02:00:00:57',
    pollSeconds: 1,
    clientCert: (i) => refused[i],
  });
  // Client 5 retries a refused auth every RetryPollIntervalSeconds: wait for three refusals each.
  const refusals = (re: RegExp): number => (gateway.output().slice(outputBefore).match(re) ?? []).length;
  await fleet.waitFor(
    () =>
      refusals(/TLS client refused.*UNABLE_TO_VERIFY_LEAF_SIGNATURE/g) >= 3 &&
      refusals(/request refused: client certificate.*blocklisted/g) >= 3,
    60_000,
    'three refusals of each device at the gateway',
  );
  t.diagnostic(
    `gateway refusals: rogue CA ${refusals(/TLS client refused.*UNABLE_TO_VERIFY_LEAF_SIGNATURE/g)}, blocklisted ${refusals(/request refused: client certificate.*blocklisted/g)}`,
  );
  for (const client of fleet.clients) {
    assert.equal(
      server.deviceByIdentity(client.identity),
      undefined,
      `refused device ${client.mac} reached the emulator\n${client.logTail()}`,
    );
    assert.equal(
      server.preauthorizations.filter((p) => p.identity.mac === client.mac).length,
      0,
      `refused device ${client.mac} was preauthorized`,
    );
  }
  assert.equal(server.calls.filter((c) => c.path === AUTH).length, authBefore, 'an auth request of a refused device reached the emulator');
});
