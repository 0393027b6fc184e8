import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { makeDeviceCert } from '../support/device-certs';
import { type GatewayProcess, startGateway, writeGatewayConfig } from '../support/gateway-process';
import { postAuth, signedAuthBody, tlsAgent } from '../support/mtls-device';
import { type MtlsBed, startMtlsBed } from '../support/mtls-bed';
import { steppedClock, type SteppedClock } from '../support/stepped-clock';
import { call, testDevice, until, type TestDevice } from './journal-harness';

// The gateway (bin/gateway.js, mTLS, the artifact proxy with signed links, the report journal and
// its kept tokens) under a wall clock stepped a day forward and a day back, the Mender server on
// the real time (docs/operations.md "Clock steps"):
// - a link is refused once past its written expiry, and when its expiry lies further ahead than
//   a link lives (the clock stepped back since it was made); a fresh poll gives a link that works;
// - a kept device token is not handed out while the wall clock says it expired, and is still
//   there when the clock steps back; so is the journal's known-good token (a report journaled);
// - the management session is not renewed because the wall clock says its token expired (it
//   has its lifetime on the monotonic clock): one login for the whole test, every device admitted;
// - the journal's replay waits on the monotonic clock: a step back a day during an outage does
//   not hold a journaled report for a day.

const USER = { email: 'gateway@example.com', password: 'gw-clock-Pa55' };
const DAY = 86_400;
const SECRET = randomBytes(32).toString('base64');
const GATEWAY_URL = 'https://gateway.invalid';

let bed: MtlsBed;
let clock: SteppedClock;
let gw: GatewayProcess;
let agent: ReturnType<typeof tlsAgent>;
let certKey: string;

before(async () => {
  bed = await startMtlsBed('clock-step-', { users: [USER] });
  clock = steppedClock(join(bed.dir, 'clock'));
  const cert = makeDeviceCert(bed.dir, 'clock-device', bed.tls.ca, { keyType: 'ec' });
  certKey = cert.key;
  agent = tlsAgent({ ca: bed.tls.ca.cert, cert: cert.cert, key: cert.key });
  const file = join(bed.dir, 'release.mender');
  writeFileSync(file, randomBytes(8192));
  await bed.server.uploadArtifact(file, { name: 'release-clock', deviceTypes: ['test-device'] });
  const configFile = writeGatewayConfig(bed.dir, {
    HTTP: { Enabled: false },
    HTTPS: { Enabled: true, Listen: '127.0.0.1:0', ServerCertificate: bed.tls.server.cert, ServerKey: bed.tls.server.key },
    UpstreamServer: { URL: bed.server.url, Timeout: '2s' },
    Features: {
      mTLS: {
        Enabled: true,
        EnableCache: false,
        CACertificate: bed.tls.ca.cert,
        MenderUsername: USER.email,
        MenderPassword: USER.password,
      },
      ArtifactsProxy: {
        Enabled: true,
        GatewayURL: GATEWAY_URL,
        DomainWhitelist: ['127.0.0.1'],
        ArtifactsCache: { Enabled: false, Path: join(bed.dir, 'cache'), SignatureSecret: SECRET, LinkExpireDuration: '1h' },
      },
      ReportJournal: { Enabled: true, Path: join(bed.dir, 'journal') },
    },
  });
  gw = await startGateway({ configFile, logLevel: 'info', env: { ...process.env, ...clock.env }, timeoutMs: 20_000 });
});

after(async () => {
  agent?.destroy();
  await gw?.stop();
  await bed?.close();
});

/** The signed link of the device's pending deployment. */
async function poll(device: TestDevice): Promise<string> {
  const reply = await device.next();
  assert.equal(reply.status, 200, reply.body);
  const uri = (JSON.parse(reply.body) as { artifact: { source: { uri: string } } }).artifact.source.uri;
  assert.ok(uri.startsWith(GATEWAY_URL), uri);
  return uri.slice(GATEWAY_URL.length);
}
const fetchLink = (target: string) => call(gw.url('https'), 'GET', target, undefined, undefined, {}, agent);
const refusal = (reply: { status: number; body: string }) => `${reply.status} ${reply.body.slice(0, 300)}`;

let macs = 0;
async function admitted(): Promise<void> {
  const mac = `02:00:00:c1:0c:${(macs++).toString(16).padStart(2, '0')}`;
  const reply = await postAuth(gw.url('https'), agent, signedAuthBody({ mac }, certKey));
  assert.equal(reply.status, 200, reply.body);
}

/** An auth request while upstream is down: the kept token, or the gateway's refusal. */
async function authDuringOutage(device: TestDevice): Promise<{ status: number; token?: string }> {
  try {
    return { status: 200, token: await device.authenticate() };
  } catch (err) {
    return { status: Number(/answered (\d+)/.exec((err as Error).message)?.[1]) };
  }
}

test('signed links, kept tokens, the management session and the replay across a day forward and a day back', {
  timeout: 120_000,
}, async () => {
  // On the real time: a device admitted (the one login), a deployment, its link works.
  const device = await testDevice(() => gw.url('https'), '02:00:00:c1:0c:ff', agent);
  const issued = device.token;
  const deviceId = bed.server.deviceByIdentity({ mac: device.mac })!.id;
  const { id: deploymentId } = bed.server.createDeployment({ name: 'clock', artifactName: 'release-clock', devices: [deviceId] });
  const before = await poll(device);
  assert.equal((await fetchLink(before)).status, 200);
  await admitted();
  assert.equal(bed.server.logins.length, 1);

  // A day forward (the gateway's clock now runs a day ahead of the server's).
  await clock.step(DAY);
  assert.match(refusal(await fetchLink(before)), /^403 .*link expired at/, 'past its written expiry');
  const ahead = await poll(device);
  assert.equal((await fetchLink(ahead)).status, 200, 'the next poll gives a link that works');
  for (let i = 0; i < 5; i++) await admitted();
  assert.equal(bed.server.logins.length, 1, 'the management token is still valid upstream: no login, no login loop');
  // A report with a token our clock says expired: passed on (upstream judges it), not journaled.
  assert.equal((await device.status(deploymentId, 'downloading')).status, 204);
  await bed.server.stop();
  assert.equal((await authDuringOutage(device)).status, 502, 'a kept token is not handed out past its exp by our clock');
  await bed.server.start();

  // A day back (the real time again), upstream down: the kept token and the known-good one were
  // not thrown away by the forward step.
  await clock.step(-DAY);
  await bed.server.stop();
  const kept = await authDuringOutage(device);
  assert.equal(kept.status, 200, 'the kept token was not thrown away by the forward step');
  assert.ok(kept.token === issued, 'the token upstream issued, unchanged');
  const journaled = await device.status(deploymentId, 'installing');
  assert.equal(journaled.status, 204, journaled.body);
  // A link made a day ahead would live 25 hours now: refused.
  assert.match(refusal(await fetchLink(ahead)), /^403 .*link expires at .*further ahead than a link lives/);

  // A day back again (the gateway a day behind the server) before upstream returns: the replay
  // is not held for a day; links made on the real time would live 25 hours: refused.
  await clock.step(-DAY);
  await bed.server.start();
  await until(
    'the journaled report delivered after a step back',
    () => bed.server.statuses(deploymentId, deviceId).includes('installing'),
    30_000,
  );
  assert.deepEqual(bed.server.statuses(deploymentId, deviceId), ['downloading', 'installing']);
  const onTime = await poll(device);
  assert.equal((await fetchLink(onTime)).status, 200, 'a link made a day behind works');
  await admitted();
  assert.equal(bed.server.logins.length, 1, 'one login for the whole test');
  assert.ok(bed.server.logins.every((l) => l.ok));
});
