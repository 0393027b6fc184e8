import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startMenderServer, type MenderServer } from '../../fixtures/mender-server';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import type { GatewayConfig } from '../../lib/config/types';
import { startGateway, type RunningGateway } from '../../lib/gateway';
import { metricsRegistry } from '../../lib/observe/metrics';
import { captureLog } from '../support/capture-log';
import { makeDeviceCert } from '../support/device-certs';
import { testConfig } from '../support/gateway-config';
import { tlsAgent } from '../support/mtls-device';
import { makeTlsMaterial, type TlsMaterial } from '../support/tls-material';
import { call, testDevice, until, type Reply, type TestDevice } from '../integration/journal-harness';
import { closeServer, listenOnFreePort } from '../support/listen';

// The report journal as a LAN host attacks it (docs/journal.md): over real TLS, against the
// emulator's real signed tokens. A report is journaled only under a token upstream accepted or
// issued; a token that merely names a device (unsigned, re-signed, another device's signature)
// gets the error it would get without the journal while upstream is down, is never replayed
// under the named device's token, and holds back nobody's `next`. One device cannot fill the
// journal. What the gateway trusts survives a restart, as hashes in a private file.

const USER = { email: 'gateway@example.com', password: 'journal-trust-Pa55' };
let dir: string;
let tls: TlsMaterial;
let store: S3Store;
let server: MenderServer;
let agent: https.Agent;
const gateways: RunningGateway[] = [];
const log = captureLog('debug');

type JournalSettings = Partial<GatewayConfig['Features']['ReportJournal']>;

async function gateway(name: string, journal: JournalSettings | false = {}, extra: Record<string, unknown> = {}): Promise<RunningGateway> {
  const g = await startGateway(
    testConfig({
      HTTPS: { Enabled: true, ServerCertificate: tls.server.cert, ServerKey: tls.server.key },
      UpstreamServer: { URL: server.url, Timeout: '2s' },
      Features: journal === false ? {} : { ReportJournal: { Enabled: true, Path: join(dir, name), ...journal } },
      ...extra,
    }),
    log.log,
  );
  gateways.push(g);
  return g;
}
const urlOf = (g: RunningGateway): string => `https://127.0.0.1:${g.addresses.https!.port}`;

let main: RunningGateway;
let off: RunningGateway;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'journal-trust-'));
  tls = makeTlsMaterial(dir);
  agent = tlsAgent({ ca: tls.ca.cert });
  store = await startS3Store({});
  server = await startMenderServer({ store, autoAccept: true, users: [USER] });
  const file = join(dir, 'a.mender');
  writeFileSync(file, randomBytes(4096));
  await server.uploadArtifact(file, { name: 'trust-2', deviceTypes: ['test-device'] });
  main = await gateway('main');
  off = await gateway('off', false);
});

after(async () => {
  for (const g of gateways) await g.close(0);
  agent.destroy();
  await server.start();
  await server.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

// Tokens an attacker can make. b64 of JSON, as a JWT segment.
const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
const claimsOf = (token: string): Record<string, unknown> => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
const exp = (): number => Math.floor(Date.now() / 1000) + 3600;
/** `{"alg":"none"}` and the victim's id: what the journal trusted before. */
const unsigned = (sub: string): string => `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub, exp: exp(), 'mender.device': true })}.`;
/** A real token with its claims changed; the signature stays the one of the original claims. */
const resigned = (token: string, claims: Record<string, unknown>): string => {
  const [header, , signature] = token.split('.');
  return `${header}.${b64({ ...claimsOf(token), ...claims })}.${signature}`;
};

const STATUS = (deployment: string) => `/api/devices/v1/deployments/device/deployments/${deployment}/status`;
const LOG = (deployment: string) => `/api/devices/v1/deployments/device/deployments/${deployment}/log`;
const INVENTORY = '/api/devices/v1/inventory/device/attributes';

/** The three reports the journal takes, sent with `token` over TLS. */
function reports(url: string, token: string, deployment: string): Promise<Reply>[] {
  const logBody = JSON.stringify({ messages: [{ level: 'error', message: 'forged', timestamp: new Date().toISOString() }] });
  return [
    call(url, 'PUT', STATUS(deployment), token, '{"status":"failure"}\n', {}, agent),
    call(url, 'PATCH', INVENTORY, token, '[{"name":"forged","value":"yes"}]\n', {}, agent),
    call(url, 'PUT', LOG(deployment), token, `${logBody}\n`, {}, agent),
  ];
}

async function victimWithDeployment(g: RunningGateway, mac: string): Promise<{ device: TestDevice; id: string; deployment: string }> {
  const device = await testDevice(() => urlOf(g), mac, agent);
  const id = server.deviceByIdentity({ mac })!.id;
  const { id: deployment } = server.createDeployment({ name: `trust-${mac}`, artifactName: 'trust-2', devices: [id] });
  assert.equal((await device.next()).status, 200);
  return { device, id, deployment };
}

const callsWith = (token: string) => server.calls.filter((c) => c.headers.authorization === `Bearer ${token}`);
const journaledSince = (from: number): number => log.lines.slice(from).filter((l) => l.includes('msg="report journaled"')).length;

describe('journal trust', () => {
  it("attack: forged tokens naming a device get the journal-off error during an outage; the victim's reports go under its own token only", {
    timeout: 60_000,
  }, async () => {
    const victim = await victimWithDeployment(main, '02:00:00:25:00:01');
    const attacker = await testDevice(() => urlOf(main), '02:00:00:25:00:02', agent);
    const forgeries: Record<string, string> = {
      'alg none, unsigned': unsigned(victim.id),
      "the attacker device's real token, sub changed to the victim": resigned(attacker.token, { sub: victim.id }),
      "the victim's real token with a later exp": resigned(victim.device.token, { exp: exp() + 86_400 }),
    };
    const from = log.lines.length;
    await server.stop();
    try {
      for (const [label, token] of Object.entries(forgeries)) {
        const answers = await Promise.all(reports(urlOf(main), token, victim.deployment));
        const journalOff = await Promise.all(reports(urlOf(off), token, victim.deployment));
        for (const [i, r] of answers.entries()) {
          assert.equal(r.headers['x-men-gateway-journaled'], undefined, `${label} #${i}: journaled`);
          assert.equal(r.status, journalOff[i]!.status, `${label} #${i}: ${r.status} ${r.body}`);
          assert.equal(JSON.parse(r.body).error, JSON.parse(journalOff[i]!.body).error, `${label} #${i}`);
        }
      }
      // The victim's own report during the same outage is journaled.
      const own = await victim.device.status(victim.deployment, 'downloading');
      assert.equal(own.status, 204, own.body);
      assert.equal(own.headers['x-men-gateway-journaled'], '1');
      assert.equal(journaledSince(from), 1, "only the victim's own report was journaled");
    } finally {
      await server.start();
    }
    await until('the victim report at the server', () => server.statuses(victim.deployment, victim.id).length > 0);
    await new Promise((r) => setTimeout(r, 1000)); // time for anything else queued to show up
    assert.deepEqual(server.statuses(victim.deployment, victim.id), ['downloading']);
    assert.deepEqual(server.deploymentLogs(victim.deployment, victim.id), []);
    assert.equal(server.devices().find((d) => d.id === victim.id)!.inventory.forged, undefined);
    const victimReports = server.calls.filter((c) => c.deviceId === victim.id && c.method !== 'POST');
    assert.ok(victimReports.length > 0);
    for (const c of victimReports) assert.equal(c.headers.authorization, `Bearer ${victim.device.token}`, `${c.method} ${c.path}`);
    for (const token of Object.values(forgeries)) assert.deepEqual(callsWith(token), [], 'a forged token went upstream after the outage');
  });

  it("attack: forged reports hold back nobody's next", { timeout: 60_000 }, async () => {
    const victim = await victimWithDeployment(main, '02:00:00:25:00:03');
    await server.stop();
    // A report the server answers with a 5xx (%FF%FE is no UTF-8: its URL decoding throws) would wait in
    // the journal, and the device's `next` behind it, for as long as MaxAge.
    let forged: Reply[];
    try {
      forged = await Promise.all(reports(urlOf(main), unsigned(victim.id), '%FF%FE'));
    } finally {
      await server.start();
    }
    const next = await victim.device.next();
    assert.ok(next.status === 200 || next.status === 204, `the victim's next answered ${next.status} ${next.body}`);
    for (const r of forged) assert.equal(r.status, 502, r.body);
  });

  it("a report made with device A's real token for device B's deployment goes upstream under A's token only", {
    timeout: 60_000,
  }, async () => {
    const b = await victimWithDeployment(main, '02:00:00:25:00:04');
    const a = await testDevice(() => urlOf(main), '02:00:00:25:00:05', agent);
    await server.stop();
    let answer: Reply;
    try {
      answer = await call(urlOf(main), 'PUT', STATUS(b.deployment), a.token, '{"status":"failure"}\n', {}, agent);
    } finally {
      await server.start();
    }
    assert.equal(answer.status, 204, answer.body);
    const path = STATUS(b.deployment);
    await until('the report replayed', () => server.calls.some((c) => c.path === path && c.method === 'PUT'));
    await new Promise((r) => setTimeout(r, 1000));
    const replayed = server.calls.filter((c) => c.path === path && c.method === 'PUT');
    assert.deepEqual(
      replayed.map((c) => c.headers.authorization),
      replayed.map(() => `Bearer ${a.token}`),
    );
    assert.deepEqual(server.statuses(b.deployment, b.id), []);
  });

  it('attack: one device cannot fill the journal: past MaxDeviceSize it gets the upstream error, the others are still journaled', {
    timeout: 60_000,
  }, async () => {
    const quota = await gateway('quota', { MaxSize: 48 * 1024, MaxDeviceSize: 20 * 1024 });
    const hog = await testDevice(() => urlOf(quota), '02:00:00:25:00:06', agent);
    const other = await testDevice(() => urlOf(quota), '02:00:00:25:00:07', agent);
    const from = log.lines.length;
    await server.stop();
    try {
      const answers: number[] = [];
      for (let i = 0; i < 6; i++) answers.push((await hog.log('quota-1', `${i} ${'x'.repeat(6000)}`)).status);
      assert.deepEqual(answers, [204, 204, 502, 502, 502, 502], 'the hog past its own share');
      const r = await other.log('quota-1', 'y'.repeat(6000));
      assert.equal(r.status, 204, `another device: ${r.status} ${r.body}`);
    } finally {
      await server.start();
    }
    assert.equal(log.lines.slice(from).filter((l) => l.includes('over its MaxDeviceSize')).length, 4);
    assert.match(await metricsRegistry.metrics(), /mender_gateway_journal_refused_total\{reason="device_full"\} [4-9]/);
  });

  it("attack: with mTLS, a certificate holder's token forged for another device is not journaled; a token the mTLS auth route issued is", {
    timeout: 60_000,
  }, async () => {
    const mtls = await gateway(
      'mtls',
      {},
      {
        HTTP: { Enabled: false },
        Features: {
          ReportJournal: { Enabled: true, Path: join(dir, 'mtls') },
          mTLS: { Enabled: true, CACertificate: tls.ca.cert, MenderUsername: USER.email, MenderPassword: USER.password },
        },
      },
    );
    const certAgent = (name: string): https.Agent => {
      const cert = makeDeviceCert(dir, name, tls.ca, { keyType: 'ec' });
      return tlsAgent({ ca: tls.ca.cert, cert: cert.cert, key: cert.key });
    };
    const victimAgent = certAgent('trust-victim');
    const attackerAgent = certAgent('trust-attacker');
    const victim = await testDevice(() => urlOf(mtls), '02:00:00:25:00:08', victimAgent);
    const attacker = await testDevice(() => urlOf(mtls), '02:00:00:25:00:09', attackerAgent);
    const victimId = server.deviceByIdentity({ mac: victim.mac })!.id;
    await server.stop();
    try {
      const own = await victim.status('mtls-1', 'downloading');
      assert.equal(own.status, 204, own.body);
      for (const token of [unsigned(victimId), resigned(attacker.token, { sub: victimId })]) {
        const r = await call(urlOf(mtls), 'PUT', STATUS('mtls-1'), token, '{"status":"failure"}\n', {}, attackerAgent);
        assert.equal(r.status, 502, r.body);
      }
    } finally {
      await server.start();
      victimAgent.destroy();
      attackerAgent.destroy();
    }
  });

  it("attack: a device whose reports upstream keeps failing (500) does not stall the replay of every other device's", {
    timeout: 60_000,
  }, async () => {
    // A front for the emulator that answers 500 to one deployment's reports and 502 while the
    // emulator is down (as a load balancer would).
    let poisoned = '';
    const front = http.createServer((req, res) => {
      if (poisoned && req.url?.includes(`/deployments/${poisoned}/`)) return void res.writeHead(500).end('{"error":"internal error"}');
      const target = new URL(server.url);
      const up = http.request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on('error', () => res.headersSent || res.writeHead(502).end('{"error":"bad gateway"}'));
      req.pipe(up);
    });
    const port = await listenOnFreePort(front);
    try {
      const g = await gateway('stall', {}, { UpstreamServer: { URL: `http://127.0.0.1:${port}`, Timeout: '2s' } });
      const failing = await victimWithDeployment(g, '02:00:00:25:00:11');
      const healthy = await victimWithDeployment(g, '02:00:00:25:00:12');
      await server.stop();
      try {
        // The failing device's report waits first in the journal: before, it was the probe, and its 500 counted as "down".
        for (const d of [failing, healthy]) {
          const r = await d.device.status(d.deployment, 'downloading');
          assert.equal(r.headers['x-men-gateway-journaled'], '1', `${r.status} ${r.body}`);
        }
      } finally {
        poisoned = failing.deployment;
        await server.start();
      }
      await until("the healthy device's report at the server", () => server.statuses(healthy.deployment, healthy.id).length === 1, 15_000);
      assert.deepEqual(server.statuses(failing.deployment, failing.id), []);
      assert.ok(log.text().includes('report replay: upstream answered an error, the report is kept and tried again later'));
    } finally {
      await closeServer(front);
    }
  });

  it('known-good tokens survive a restart, kept as hashes in a 0600 file: a device that authenticated before reports during the outage', {
    timeout: 60_000,
  }, async () => {
    const first = await gateway('restart');
    const { device, id, deployment } = await victimWithDeployment(first, '02:00:00:25:00:10');
    await first.close(0);
    gateways.splice(gateways.indexOf(first), 1);
    const file = join(dir, 'restart', 'known-tokens');
    assert.equal(statSync(join(dir, 'restart')).mode & 0o777, 0o700);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const text = readFileSync(file, 'utf8');
    for (const line of text.trim().split('\n')) assert.match(line, /^[0-9a-f]{64} \S{1,128} \d+$/);
    assert.ok(text.includes(createHash('sha256').update(device.token).digest('hex')));
    for (const part of device.token.split('.')) assert.ok(!text.includes(part), 'a piece of the token on disk');

    await server.stop();
    const second = await gateway('restart');
    let r: Reply;
    try {
      r = await call(urlOf(second), 'PUT', STATUS(deployment), device.token, '{"status":"downloading"}\n', {}, agent);
    } finally {
      await server.start();
    }
    assert.equal(r.status, 204, r.body);
    await until('the report at the server', () => server.statuses(deployment, id).length === 1);
  });

  it('logs no token', () => {
    assert.doesNotMatch(log.text(), /eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/);
  });
});
