import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startMenderServer, type MenderServer } from '../../fixtures/mender-server';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import { deployToFleet, RETRY_STATES } from '../support/fleet-deployment';
import { makeDeviceCert, makeRogueCa, type DeviceCert } from '../support/device-certs';
import { startGateway, writeGatewayConfig, type GatewayProcess } from '../support/gateway-process';
import { makeArtifact, type Artifact } from '../support/make-artifact';
import { startFleet, type Fleet } from '../support/real-clients';
import { makeTlsMaterial, type TlsMaterial } from '../support/tls-material';

// Issue 6 with real mender 3.4 clients: the emulator leaves devices pending (no auto-accept,
// nobody accepts them); devices with CA-signed RSA 3072, P-256 and Ed25519 certificates are
// preauthorized by the gateway with their own keys and complete a deployment. Devices with a
// rogue-CA, expired, blocklisted or no certificate, and one blocklisted while running, never
// reach the emulator's auth endpoint again.

const KEY_TYPES = ['rsa', 'ec', 'ed25519'] as const;
const EXPECTED_STATUSES = ['downloading', 'downloading', 'downloading', 'installing', 'installing', 'success'];
const AUTH = '/api/devices/v1/authentication/auth_requests';
const USER = { email: 'gateway@example.com', password: 'e2e-Gateway-pw' };

let dir: string;
let tls: TlsMaterial;
let store: S3Store;
let server: MenderServer;
let gateway: GatewayProcess | undefined;
let artifact: Artifact;
let blocklist: string;
const fleets: Fleet[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'e2e-mtls-'));
  // One CA signs the gateway's server certificate and the devices' certificates (the docs' setup).
  tls = makeTlsMaterial(mkdtempSync(join(dir, 'tls-')));
  blocklist = join(dir, 'blacklist.txt');
  writeFileSync(blocklist, '# revoked\n0x00:0b:1a:57\n');
  store = await startS3Store();
  server = await startMenderServer({ store, autoAccept: false, users: [USER] });
  artifact = await makeArtifact({ dir, name: 'e2e-mtls-1', payloadBytes: 256 * 1024, seed: 'mtls' });
  await server.uploadArtifact(artifact.path, { name: artifact.name, deviceTypes: [artifact.deviceType] });
  const configFile = writeGatewayConfig(dir, {
    HTTPS: { Enabled: true, Listen: '127.0.0.1:0', ServerCertificate: tls.server.cert, ServerKey: tls.server.key },
    HTTP: { Enabled: false },
    UpstreamServer: { URL: server.url },
    Features: {
      ArtifactsProxy: { Enabled: false },
      mTLS: { Enabled: true, CACertificate: tls.ca.cert, BlacklistPath: blocklist, MenderUsername: USER.email, MenderPassword: USER.password },
    },
  });
  gateway = await startGateway({ configFile, logLevel: 'debug' });
});

after(async () => {
  for (const fleet of fleets) await fleet.stop();
  const code = await gateway?.stop();
  await server?.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
  assert.equal(code, 0, `gateway exit code on SIGTERM\n${gateway?.output().slice(-2000)}`);
});

const authCallsFrom = (mac: string) =>
  server.calls.filter((c) => c.path === AUTH && server.deviceByIdentity({ mac })?.id === c.deviceId).length;

test('devices with CA-signed RSA 3072, P-256 and Ed25519 certificates are admitted with no manual acceptance and complete an update', { timeout: 150_000 }, async () => {
  const certs: DeviceCert[] = KEY_TYPES.map((keyType) => makeDeviceCert(tls.dir, `device-${keyType}`, tls.ca, { keyType }));
  const fleet = await startFleet({
    count: KEY_TYPES.length, serverUrl: gateway!.url('https'), serverCertificate: tls.ca.cert, macPrefix: '02:00:00:66',
    clientCert: (i) => ({ cert: certs[i].cert, key: certs[i].key }),
  });
  fleets.push(fleet);
  const run = await deployToFleet(fleet, server, artifact.name, 90_000);
  const byId = new Map(server.devices().map((d) => [d.id, d]));
  for (const [i, id] of run.deviceIds.entries()) {
    const client = fleet.clients[i];
    assert.deepEqual(server.statuses(run.deploymentId, id), EXPECTED_STATUSES, `${KEY_TYPES[i]} device ${client.mac}\n${client.logTail()}`);
    const installed = createHash('sha256').update(readFileSync(client.installedPath(artifact.payloadName))).digest('hex');
    assert.equal(installed, artifact.payloadSha256);
    // Preauthorized with its own key (the HttpsClient key is the auth key), with force.
    const preauth = server.preauthorizations.filter((p) => p.identity.mac === client.mac);
    assert.ok(preauth.length >= 1, `${client.mac} was never preauthorized`);
    assert.ok(preauth.every((p) => p.force && p.status === 201 && p.pubkey === client.publicKeyPem), `${client.mac}: ${JSON.stringify(preauth)}`);
    assert.deepEqual(byId.get(id)!.pubkeys, [client.publicKeyPem]);
  }
  assert.equal(server.logins.length, 1, 'one management login for the whole fleet');
  assert.deepEqual(fleet.logsMatching(RETRY_STATES).map((c) => `${c.mac}\n${c.logTail()}`), []);
  const logged = gateway!.output();
  assert.doesNotMatch(logged, new RegExp(USER.password));
  assert.doesNotMatch(logged, /eyJ[\w-]{10,}\.[\w-]{10,}/, 'a JWT appears in the gateway log');
});

test('rogue-CA, expired, blocklisted and certificate-less devices are refused; so is one blocklisted while running', { timeout: 120_000 }, async () => {
  const rogueCa = makeRogueCa(tls.dir, 'e2e-rogue-ca');
  const refused: (DeviceCert | undefined)[] = [
    makeDeviceCert(tls.dir, 'rogue-device', rogueCa),
    makeDeviceCert(tls.dir, 'expired-device', tls.ca, { fromDays: -60, toDays: -1 }),
    makeDeviceCert(tls.dir, 'listed-device', tls.ca, { serial: 'B1A57' }),
    undefined,
  ];
  const later = makeDeviceCert(tls.dir, 'later-device', tls.ca, { serial: '7E57AB1E' });
  const authBefore = server.calls.filter((c) => c.path === AUTH).length;
  const badFleet = await startFleet({
    count: refused.length, serverUrl: gateway!.url('https'), serverCertificate: tls.ca.cert, macPrefix: '02:00:00:67',
    clientCert: (i) => refused[i] && { cert: refused[i]!.cert, key: refused[i]!.key },
  });
  fleets.push(badFleet);
  const goodFleet = await startFleet({
    count: 1, serverUrl: gateway!.url('https'), serverCertificate: tls.ca.cert, macPrefix: '02:00:00:68',
    clientCert: () => ({ cert: later.cert, key: later.key }),
  });
  fleets.push(goodFleet);
  const laterMac = goodFleet.clients[0].mac;
  await goodFleet.waitFor(() => server.devices().some((d) => d.identity.mac === laterMac && d.status === 'accepted'), 60_000, 'the later-listed device to be admitted');
  // Every refused client has tried and failed at least twice by now.
  await badFleet.waitFor(() => badFleet.clients.every((c) => (c.logTail(200).match(/authoriz|certificate|SSL/gi) ?? []).length >= 2), 60_000, 'refused clients to have tried');

  appendFileSync(blocklist, '7e:57:ab:1e\n');
  const deadline = Date.now() + 10_000;
  while (!/blocklist reloaded/.test(gateway!.output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.match(gateway!.output(), /blocklist reloaded/);
  const callsAtRevocation = server.calls.filter((c) => c.deviceId === server.deviceByIdentity({ mac: laterMac })?.id).length;
  await new Promise((r) => setTimeout(r, 8000));

  for (const client of badFleet.clients) {
    assert.equal(server.deviceByIdentity(client.identity), undefined, `refused device ${client.mac} reached the emulator\n${client.logTail()}`);
  }
  assert.equal(server.calls.filter((c) => c.path === AUTH).length - authBefore, authCallsFrom(laterMac), 'only the later-listed device ever authenticated');
  const laterId = server.deviceByIdentity({ mac: laterMac })!.id;
  assert.equal(server.calls.filter((c) => c.deviceId === laterId).length, callsAtRevocation, 'nothing from the revoked device reached the emulator after the reload');
  assert.match(gateway!.output(), /request refused: client certificate.*blocklisted/);
  for (const reason of ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_HAS_EXPIRED', 'no client certificate']) {
    assert.match(gateway!.output(), new RegExp(`TLS client refused.*${reason}`));
  }
});
