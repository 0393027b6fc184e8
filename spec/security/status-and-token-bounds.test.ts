import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { startGateway, type RunningGateway } from '../../lib/gateway';
import { KNOWN_TOKENS_FILE, MAX_KNOWN_TOKENS } from '../../lib/journal/known-tokens';
import { captureLog } from '../support/capture-log';
import { emulatorSuite } from '../support/emulator-suite';
import { ALIVE, AUTH } from '../support/device-api-paths';
import { testConfig } from '../support/gateway-config';
import { signedAuthBody } from '../support/mtls-device';
import { makeKey } from '../support/tls-material';
import { call, testDevice } from '../integration/journal-harness';

// Three smaller doors of the trust boundary, from the LAN side against the emulator's real tokens:
// a device's own key-renewal loop pushing every other device out of the journal's known-good
// tokens; a web page that rebinds its name to 127.0.0.1 reading the loopback-only status page
// through the operator's SSH tunnel; and a forged token planting a device on the status board
// through an answer upstream never gave. (Nothing new of lib/ is imported, so the file also runs
// against the code before these fixes, where each attack must fail.)

const suite = emulatorSuite('gw-bounds-', { autoAccept: true });
const log = captureLog('debug');

async function gateway(overrides: Record<string, unknown>): Promise<RunningGateway> {
  const g = await startGateway(
    testConfig({
      UpstreamServer: { URL: suite.server.url, Timeout: '2s' },
      Metrics: { Enabled: true, Listen: '127.0.0.1:0' },
      ...overrides,
    }),
    log.log,
  );
  suite.gateways.push(g);
  await g.admin!.ready;
  return g;
}
const httpUrl = (g: RunningGateway): string => `http://127.0.0.1:${g.addresses.http!.port}`;

type Reply = { status: number; headers: http.IncomingHttpHeaders; body: string };

/** One request on loopback with the headers exactly as given (Host included). */
function raw(port: number, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

describe('known-good tokens: one device renewing in a loop', () => {
  it("attack: a device's auth loop does not push an earlier device's token out: the victim is still journaled in the next outage", {
    timeout: 90_000,
  }, async () => {
    const path = join(suite.dir, 'journal-bounds');
    const journal = { ReportJournal: { Enabled: true, Path: path } };
    const first = await gateway({ Features: journal });
    let current = first;
    const url = () => httpUrl(current);
    const victim = await testDevice(url, '02:00:00:25:30:01');
    await suite.closeGateway(first);

    // The rest of a large fleet came after the victim: the set, restored from its file, is
    // nearly full (a few free places), with the victim's token the oldest.
    const file = join(path, KNOWN_TOKENS_FILE);
    const victimLines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    assert.equal(victimLines.length, 1, 'the victim token was saved');
    const farExp = Date.now() + 86_400_000;
    const free = 5;
    const fleet = Array.from(
      { length: MAX_KNOWN_TOKENS - victimLines.length - free },
      (_, i) => `${randomBytes(32).toString('hex')} fleet-${i} ${farExp}\n`,
    );
    writeFileSync(file, `${victimLines.join('\n')}\n${fleet.join('')}`, { mode: 0o600 });

    const g = await gateway({ Features: journal });
    current = g;
    // The attacker: one device (one identity, so one device id upstream), re-authenticating with
    // a new key each time, so that upstream issues a distinct token each time.
    const attackerMac = '02:00:00:25:30:02';
    let attacker = await testDevice(url, attackerMac);
    for (let i = 0; i < 4 * free; i++) attacker = await testDevice(url, attackerMac);
    const attackerId = suite.server.deviceByIdentity({ mac: attackerMac })!.id;
    assert.equal(new Set(suite.server.devices().map((d) => d.id)).has(attackerId), true);

    await suite.server.stop();
    let victimReport: Awaited<ReturnType<typeof victim.inventory>>;
    let attackerReport: Awaited<ReturnType<typeof victim.inventory>>;
    try {
      victimReport = await victim.inventory({ site: 'victim' });
      attackerReport = await attacker.inventory({ site: 'attacker' });
    } finally {
      await suite.server.start();
    }
    assert.equal(victimReport.status, 200, `the victim's report during the outage: ${victimReport.status} ${victimReport.body}`);
    assert.equal(victimReport.headers['x-men-gateway-journaled'], '1');
    assert.equal(attackerReport.status, 200, "the attacker's newest token still counts for its own reports");

    await suite.closeGateway(g);
    const attackerTokens = readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.split(' ')[1] === attackerId);
    assert.ok(attackerTokens.length <= 3, `the attacker device holds ${attackerTokens.length} known-good tokens`);
  });
});

describe('the status page behind an SSH tunnel', () => {
  let g: RunningGateway;
  let deviceId: string;
  const port = () => g.admin!.address()!.port;

  before(async () => {
    g = await gateway({});
    const device = await testDevice(() => httpUrl(g), '02:00:00:25:31:01');
    assert.equal((await device.next()).status, 204);
    deviceId = suite.server.deviceByIdentity({ mac: '02:00:00:25:31:01' })!.id;
  });

  it('attack: DNS rebinding: a loopback request whose Host is another site gets 403 JSON for the page and /api/status, no device id', async () => {
    for (const host of [
      `evil.example:${port()}`,
      'evil.example',
      `127.0.0.1.evil.example:${port()}`,
      `localhost.evil.example`,
      '[::1].evil',
    ]) {
      for (const path of ['/api/status', '/api/status/history', '/', '/status', '/status/status.js']) {
        const r = await raw(port(), 'GET', path, { Host: host });
        assert.equal(r.status, 403, `${host} ${path}: ${r.status} ${r.body.slice(0, 200)}`);
        assert.match(String(r.headers['content-type']), /^application\/json/);
        assert.match(JSON.parse(r.body).error, /DNS rebinding/, host);
        assert.ok(!r.body.includes(deviceId), `${host} ${path}: no device id`);
      }
    }
  });

  it('the operator through the tunnel is served: localhost, 127.x and [::1], with or without a port; /metrics answers any Host', async () => {
    for (const host of [
      `127.0.0.1:${port()}`,
      '127.0.0.1',
      `localhost:${port()}`,
      'LOCALHOST',
      '127.0.0.2',
      `[::1]:${port()}`,
      'localhost.',
    ]) {
      const r = await raw(port(), 'GET', '/api/status', { Host: host });
      assert.equal(r.status, 200, `${host}: ${r.body.slice(0, 200)}`);
      assert.ok(r.body.includes(deviceId), host);
    }
    assert.equal((await raw(port(), 'GET', '/', { Host: `localhost:${port()}` })).status, 200);
    assert.equal((await raw(port(), 'GET', '/metrics', { Host: 'evil.example' })).status, 200);
  });
});

describe('the status board and forged tokens', () => {
  const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const forged = (sub: string): string =>
    `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub, exp: Math.floor(Date.now() / 1000) + 3600, 'mender.device': true })}.`;

  it('attack: a forged token on the health probe and on an auth request upstream answers 200 plants no device on /api/status', async () => {
    const g = await gateway({});
    const port = g.addresses.http!.port;
    const status = async (): Promise<string> => (await raw(g.admin!.address()!.port, 'GET', '/api/status', { Host: '127.0.0.1' })).body;

    const onProbe = 'planted-by-probe';
    for (const method of ['GET', 'HEAD']) {
      const r = await raw(port, method, ALIVE, { Host: 'gw', Authorization: `Bearer ${forged(onProbe)}` });
      assert.equal(r.status, 204, `${method} alive`);
    }
    // The attacker's own auth request (upstream answers 200: it checks the signature, not the
    // bearer token it never asked for).
    const onAuth = 'planted-by-auth';
    const body = signedAuthBody({ mac: '02:00:00:25:32:66' }, makeKey(suite.dir, 'planter'));
    const auth = await raw(
      port,
      'POST',
      AUTH,
      { Host: 'gw', 'Content-Type': 'application/json', 'X-MEN-Signature': body.signature, Authorization: `Bearer ${forged(onAuth)}` },
      body.raw.toString(),
    );
    assert.equal(auth.status, 200, auth.body);
    const board = await status();
    assert.ok(!board.includes(onProbe), 'the health probe planted a device');
    assert.ok(!board.includes(onAuth), 'the auth request planted a device');

    // A real device's poll is recorded.
    const device = await testDevice(() => httpUrl(g), '02:00:00:25:32:01');
    const id = suite.server.deviceByIdentity({ mac: '02:00:00:25:32:01' })!.id;
    assert.ok(!(await status()).includes(id), 'the auth request alone records no device');
    assert.equal((await device.next()).status, 204);
    assert.ok((await status()).includes(id), 'the device is on the board after its poll');
    // Its token forged onto a probe says nothing either (not 2xx from upstream on a device path).
    assert.equal((await call(httpUrl(g), 'GET', ALIVE, forged('planted-later'))).status, 204);
    assert.ok(!(await status()).includes('planted-later'));
  });
});
