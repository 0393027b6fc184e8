import assert from 'node:assert/strict';
import { once } from 'node:events';
import { appendFileSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Agent } from 'node:https';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startMenderServer, type MenderServer } from '../../fixtures/mender-server';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import type { GatewayConfig } from '../../lib/config/types';
import { startGateway } from '../../lib/gateway';
import { captureLog } from '../support/capture-log';
import { makeCrl, makeDeviceCert, makeIntermediate, makeRogueCa, makeSelfSignedDevice, type DeviceCert } from '../support/device-certs';
import { testConfig } from '../support/gateway-config';
import { postAuth, signedAuthBody, tlsAgent } from '../support/mtls-device';
import { makeTlsMaterial, type TlsMaterial } from '../support/tls-material';
import { metricsRegistry } from '../../lib/observe/metrics';

// mTLS, who gets in: verified against CACertificate (intermediates included); rogue CA,
// self-signed, none, expired, not yet valid refused at the handshake; the serial blocklist on
// every request, reloaded while running, open connections it now refuses closed, session tickets rotated so no old session resumes.

let dir: string;
let tls: TlsMaterial;
let store: S3Store;
let rogueCaFile: string;
let certs: Record<
  'good' | 'chained' | 'rogue' | 'selfSigned' | 'expired' | 'notYetValid' | 'rogueExpired' | 'listed' | 'later',
  DeviceCert
>;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mtls-handshake-'));
  tls = makeTlsMaterial(dir);
  const rogue = makeRogueCa(dir);
  rogueCaFile = rogue.cert;
  const intermediate = makeIntermediate(dir, 'intermediate-ca', tls.ca);
  certs = {
    good: makeDeviceCert(dir, 'good', tls.ca),
    chained: makeDeviceCert(dir, 'chained', intermediate, { keyType: 'rsa' }),
    rogue: makeDeviceCert(dir, 'rogue', rogue),
    selfSigned: makeSelfSignedDevice(dir, 'self-signed-device'),
    expired: makeDeviceCert(dir, 'expired', tls.ca, { fromDays: -30, toDays: -1 }),
    notYetValid: makeDeviceCert(dir, 'not-yet-valid', tls.ca, { fromDays: 2, toDays: 30 }),
    rogueExpired: makeDeviceCert(dir, 'rogue-expired', rogue, { fromDays: -30, toDays: -1 }),
    listed: makeDeviceCert(dir, 'listed', tls.ca, { serial: '1ABCDEF0', keyType: 'ed25519' }),
    later: makeDeviceCert(dir, 'later', tls.ca, { serial: '0BADC0DE' }),
  };
  store = await startS3Store();
});
after(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function startPair(mtls: Partial<GatewayConfig['Features']['mTLS']> = {}) {
  const server = await startMenderServer({ store, users: [{ email: 'gw@example.com', password: 'pw' }] });
  const captured = captureLog('debug');
  const configWith = (more: Partial<GatewayConfig['Features']['mTLS']>) =>
    testConfig({
      HTTP: { Enabled: false },
      HTTPS: { Enabled: true, ServerCertificate: tls.server.cert, ServerKey: tls.server.key },
      UpstreamServer: { URL: server.url },
      Features: {
        mTLS: { Enabled: true, CACertificate: tls.ca.cert, MenderUsername: 'gw@example.com', MenderPassword: 'pw', ...mtls, ...more },
      },
    });
  const gateway = await startGateway(configWith({}), captured.log).catch(async (err: unknown) => {
    await server.close();
    throw err;
  });
  const url = `https://127.0.0.1:${gateway.addresses.https!.port}`;
  return {
    server,
    url,
    captured,
    gateway,
    configWith,
    async close() {
      await gateway.close(0);
      await server.close();
    },
  };
}

let mac = 0;
function auth(url: string, cert: DeviceCert | undefined, agentOptions = {}) {
  const agent = tlsAgent({ ca: tls.ca.cert, cert: cert?.chain, key: cert?.key }, agentOptions);
  const body = signedAuthBody({ mac: `02:00:00:07:00:${(mac++).toString(16).padStart(2, '0')}` }, cert?.key ?? certs.good.key);
  return postAuth(url, agent, body).finally(() => agent.destroy());
}

async function waitForLog(captured: ReturnType<typeof captureLog>, pattern: RegExp, count: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while ((captured.text().match(new RegExp(pattern, 'g')) ?? []).length < count) {
    if (Date.now() > deadline) throw new Error(`no log line ${pattern} (×${count}):\n${captured.text()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The one idle keep-alive socket of `agent`. */
function keptSocket(agent: Agent): Socket {
  const sockets = Object.values(agent.freeSockets).flat();
  assert.equal(sockets.length, 1, 'one kept-alive connection');
  return sockets[0] as Socket;
}

/** `socket` is closed by the gateway within 5 s (no request needed). */
async function closedByGateway(socket: Socket, message: string): Promise<void> {
  if (socket.destroyed) return;
  const timeout = AbortSignal.timeout(5000);
  await once(socket, 'close', { signal: timeout }).catch(() => assert.fail(message));
}

const admitted = (server: MenderServer) => server.calls.filter((c) => c.path.startsWith('/api/devices/')).length;

describe('client certificate verification', () => {
  let pair: Awaited<ReturnType<typeof startPair>>;
  before(async () => {
    pair = await startPair();
  });
  after(() => pair.close());

  it('admits a device whose certificate chains to the CA through an intermediate it presents', async () => {
    const reply = await auth(pair.url, certs.chained);
    assert.equal(reply.status, 200, reply.body);
  });

  for (const name of ['rogue', 'selfSigned', 'none', 'expired', 'notYetValid'] as const) {
    it(`refuses ${name} at the handshake: no request reaches a handler or the server`, async () => {
      const before = pair.server.calls.length;
      await assert.rejects(auth(pair.url, name === 'none' ? undefined : certs[name]), (err: NodeJS.ErrnoException) => {
        assert.match(String(err.code ?? err.message), /ECONNRESET|ERR_SSL|EPIPE|certificate/i);
        return true;
      });
      assert.equal(pair.server.calls.length, before);
    });
  }

  it('says why in its log', () => {
    const text = pair.captured.text();
    for (const reason of [
      'CERT_HAS_EXPIRED',
      'CERT_NOT_YET_VALID',
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT',
      'DEPTH_ZERO_SELF_SIGNED_CERT',
      'no client certificate',
    ]) {
      assert.match(text, new RegExp(`TLS client refused.*(${reason})`), reason);
    }
    assert.doesNotMatch(text, /request refused/);
  });

  it('counts admissions and refusals by reason in the metrics', async () => {
    const text = await metricsRegistry.metrics();
    const count = (series: string) =>
      Number(
        text
          .split('\n')
          .find((l) => l.startsWith(series + ' '))
          ?.split(' ')[1] ?? 0,
      );
    assert.ok(count('mender_gateway_mtls_admissions_total') >= 1);
    assert.ok(count('mender_gateway_mtls_refusals_total{reason="expired"}') >= 1);
    assert.ok(count('mender_gateway_mtls_refusals_total{reason="not_yet_valid"}') >= 1);
    assert.ok(count('mender_gateway_mtls_refusals_total{reason="no_certificate"}') >= 1);
    assert.ok(count('mender_gateway_mtls_refusals_total{reason="untrusted"}') >= 2, 'rogue CA and self-signed');
  });
});

describe('InsecureSkipClientExpireAfter', () => {
  it('admits an expired certificate from the CA, and still refuses rogue, expired-rogue, not-yet-valid and none', async () => {
    const pair = await startPair({ InsecureSkipClientExpireAfter: true });
    try {
      assert.match(pair.captured.text(), /level=warning.*expired client certificates are accepted/);
      const reply = await auth(pair.url, certs.expired);
      assert.equal(reply.status, 200, reply.body);
      assert.equal((await auth(pair.url, certs.chained)).status, 200);
      const before = pair.server.calls.length;
      for (const cert of [certs.rogue, certs.rogueExpired, certs.notYetValid, certs.selfSigned, undefined]) {
        await assert.rejects(auth(pair.url, cert), `${cert?.cert ?? 'no certificate'} was admitted`);
      }
      assert.equal(pair.server.calls.length, before);
      assert.match(pair.captured.text(), /TLS client refused.*CERT_HAS_EXPIRED|TLS client refused.*UNABLE_TO/);
    } finally {
      await pair.close();
    }
  });
});

describe('serial blocklist', () => {
  it('refuses listed serials (any notation) on every request, reloads on change, keeps the last good list when broken', async () => {
    const file = join(dir, 'blacklist.txt');
    // Colons, 0x, leading zeros and lower case all name the same serial.
    writeFileSync(file, '# revoked devices\n\n0x00:1a:bc:de:f0\n');
    const pair = await startPair({ BlacklistPath: file });
    try {
      const listed = await auth(pair.url, certs.listed);
      assert.equal(listed.status, 403);
      assert.deepEqual(Object.keys(JSON.parse(listed.body)), ['error', 'request_id']);
      assert.equal(admitted(pair.server), 0, 'the server saw nothing of the listed device');

      // "later" connects, keeps its connection and its TLS session, then gets listed.
      const agent = tlsAgent({ ca: tls.ca.cert, cert: certs.later.cert, key: certs.later.key }, { keepAlive: true, maxSockets: 1 });
      const body = signedAuthBody({ mac: '02:00:00:07:01:01' }, certs.later.key);
      assert.equal((await postAuth(pair.url, agent, body)).status, 200);
      const freshAgent = tlsAgent({ ca: tls.ca.cert, cert: certs.later.cert, key: certs.later.key });
      assert.equal((await postAuth(pair.url, freshAgent, body)).status, 200);
      const resumedBefore = await postAuth(pair.url, freshAgent, body);
      assert.equal(resumedBefore.sessionReused, true, 'the client resumes its session before the reload');
      const seen = admitted(pair.server);

      const kept = keptSocket(agent);
      appendFileSync(file, 'BADC0DE\n');
      await waitForLog(pair.captured, /blocklist reloaded/, 1);
      await closedByGateway(kept, 'a connection opened before the reload is verified again and closed');
      assert.match(
        pair.captured.text(),
        /connection closed: client certificate no longer admitted.*serial=0BADC0DE reason=.*blocklisted" after=blocklist/,
      );
      const onNewConnection = await postAuth(pair.url, agent, body);
      assert.equal(onNewConnection.status, 403);
      const resumedAfter = await postAuth(pair.url, freshAgent, body);
      assert.equal(resumedAfter.status, 403);
      assert.equal(resumedAfter.sessionReused, false, 'ticket keys were rotated: the old session does not resume');
      assert.equal(admitted(pair.server), seen, 'nothing more reached the server');
      agent.destroy();
      freshAgent.destroy();

      writeFileSync(file, '1ABCDEF0\nnot-a-serial\n');
      await waitForLog(pair.captured, /blocklist not reloaded, keeping the last good list.*line 2: not a hexadecimal serial/, 1);
      assert.equal((await auth(pair.url, certs.later)).status, 403, 'the last good list still applies');
      assert.equal((await auth(pair.url, certs.good)).status, 200);
    } finally {
      await pair.close();
    }
  });

  it('refuses a listed device on a resumed session too (TLS 1.3 PSK and TLS 1.2 ticket): the serial is checked per request, not only at a full handshake', async () => {
    // A resumed session skips certificate verification; the listed device's second connection
    // offers the ticket its refused first connection got, and must still get 403, never 200.
    const file = join(dir, 'blacklist-resumed.txt');
    writeFileSync(file, '1ABCDEF0\n');
    const pair = await startPair({ BlacklistPath: file });
    try {
      for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
        const agent = tlsAgent({ ca: tls.ca.cert, cert: certs.listed.cert, key: certs.listed.key }, { maxVersion });
        const body = signedAuthBody({ mac: `02:00:00:07:03:0${maxVersion.at(-1)}` }, certs.listed.key);
        const first = await postAuth(pair.url, agent, body);
        assert.equal(first.status, 403, maxVersion);
        assert.equal(first.sessionReused, false);
        const resumed = await postAuth(pair.url, agent, body);
        assert.equal(resumed.sessionReused, true, `${maxVersion}: the gateway resumes sessions (tickets on)`);
        assert.equal(resumed.status, 403, `${maxVersion}: a resumed session of a listed device`);
        agent.destroy();
      }
      assert.equal(admitted(pair.server), 0, 'the server saw nothing of the listed device');
    } finally {
      await pair.close();
    }
  });

  it('refuses to start with a missing or broken blocklist', async () => {
    for (const [content, why] of [
      [null, /no such file/],
      ['xyz\n', /line 1: not a hexadecimal serial/],
    ] as const) {
      const file = join(dir, `broken-${why.source.length}.txt`);
      if (content !== null) writeFileSync(file, content);
      await assert.rejects(startPair({ BlacklistPath: file }), why);
    }
  });
});

describe('CRL (CRLPath, ours)', () => {
  it('refuses revoked serials of its CA on every request, reloads on change, keeps the last good CRL when one does not verify, enforces a CRL past its next update', async () => {
    const rogue = { cert: rogueCaFile, key: rogueCaFile.replace(/\.crt$/, '.key') };
    const revoked = makeDeviceCert(dir, 'crl-revoked', tls.ca, { serial: '0A1B2C3D' });
    const later = makeDeviceCert(dir, 'crl-later', tls.ca, { serial: '0CAFE0' });
    // The same serial from another CA (the intermediate): serials are unique only per CA.
    const sameSerialOtherCa = makeDeviceCert(dir, 'crl-other-ca', makeIntermediate(dir, 'crl-intermediate', tls.ca), {
      serial: '0A1B2C3D',
    });
    const file = join(dir, 'ca.crl');
    copyFileSync(makeCrl(dir, 'crl-1', tls.ca, { revoked: ['0A1B2C3D'] }), file);
    const pair = await startPair({ CRLPath: file });
    try {
      await waitForLog(pair.captured, /mTLS CRL loaded.*crls=1 revoked=1/, 1);
      const refused = await auth(pair.url, revoked);
      assert.equal(refused.status, 403);
      assert.deepEqual(Object.keys(JSON.parse(refused.body)), ['error', 'request_id']);
      assert.match(pair.captured.text(), /serial 0A1B2C3D is revoked by the CA's CRL/);
      assert.equal(admitted(pair.server), 0, 'the server saw nothing of the revoked device');
      assert.equal((await auth(pair.url, sameSerialOtherCa)).status, 200);
      assert.equal((await auth(pair.url, certs.good)).status, 200);

      // "later" keeps a connection and a resumable session, then the CA revokes it (DER this time).
      const agent = tlsAgent({ ca: tls.ca.cert, cert: later.cert, key: later.key }, { keepAlive: true, maxSockets: 1 });
      const body = signedAuthBody({ mac: '02:00:00:07:02:01' }, later.key);
      assert.equal((await postAuth(pair.url, agent, body)).status, 200);
      const freshAgent = tlsAgent({ ca: tls.ca.cert, cert: later.cert, key: later.key });
      assert.equal((await postAuth(pair.url, freshAgent, body)).status, 200);
      assert.equal((await postAuth(pair.url, freshAgent, body)).sessionReused, true);
      const kept = keptSocket(agent);
      copyFileSync(makeCrl(dir, 'crl-2', tls.ca, { revoked: ['0A1B2C3D', '0CAFE0'], der: true }), file);
      await waitForLog(pair.captured, /mTLS CRL reloaded.*revoked=2/, 1);
      await closedByGateway(kept, 'a connection opened before the reload is verified again and closed');
      assert.equal((await postAuth(pair.url, agent, body)).status, 403);
      const resumed = await postAuth(pair.url, freshAgent, body);
      assert.equal(resumed.status, 403);
      assert.equal(resumed.sessionReused, false, 'ticket keys were rotated');
      agent.destroy();
      freshAgent.destroy();

      // A CRL that does not verify against the CA: the last good one stays.
      copyFileSync(makeCrl(dir, 'crl-rogue', rogue, { revoked: [] }), file);
      await waitForLog(pair.captured, /mTLS CRL not reloaded, keeping the last good one/, 1);
      assert.equal((await auth(pair.url, later)).status, 403);

      // Past its next update (an uplink outage kept a fresh one away): enforced, warned about.
      copyFileSync(makeCrl(dir, 'crl-stale', tls.ca, { revoked: ['0A1B2C3D'], lastUpdateDays: -10, nextUpdateDays: -3 }), file);
      await waitForLog(pair.captured, /level=warning msg="CRL is past its nextUpdate: still enforced"/, 1);
      assert.equal((await auth(pair.url, revoked)).status, 403, 'what it lists stays refused');
      assert.equal((await auth(pair.url, later)).status, 200, 'what it does not list is admitted');
      assert.equal((await auth(pair.url, certs.good)).status, 200);
    } finally {
      await pair.close();
    }
  });

  it('refuses to start with a missing CRL or one its CA did not sign', async () => {
    const rogue = { cert: rogueCaFile, key: rogueCaFile.replace(/\.crt$/, '.key') };
    await assert.rejects(startPair({ CRLPath: join(dir, 'no-such.crl') }), /Features\.mTLS\.CRLPath: .*no such file/);
    await assert.rejects(startPair({ CRLPath: makeCrl(dir, 'crl-start-rogue', rogue, { revoked: ['01'] }) }), /Features\.mTLS\.CRLPath: /);
  });
});

describe('reload (SIGHUP) of the mTLS CA', () => {
  it('trusts the new CA and refuses the old one without a restart; an unusable file keeps the CA in use', async () => {
    const pair = await startPair();
    const refused = (err: NodeJS.ErrnoException) => /ECONNRESET|ERR_SSL|EPIPE|certificate/i.test(String(err.code ?? err.message));
    try {
      assert.equal((await auth(pair.url, certs.good)).status, 200);
      await assert.rejects(auth(pair.url, certs.rogue), refused);

      pair.gateway.reload(pair.configWith({ CACertificate: rogueCaFile }));
      assert.equal((await auth(pair.url, certs.rogue)).status, 200);
      await assert.rejects(auth(pair.url, certs.good), refused);

      const broken = join(dir, 'broken-ca.pem');
      writeFileSync(broken, 'not a certificate\n');
      pair.gateway.reload(pair.configWith({ CACertificate: broken }));
      assert.equal((await auth(pair.url, certs.rogue)).status, 200);
      assert.match(pair.captured.text(), /mTLS CA not replaced, keeping the one in use.*no PEM certificate/);
    } finally {
      await pair.close();
    }
  });
});
