import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import { makeDeviceCert, makeSelfSignedDevice, type DeviceCert } from '../support/device-certs';
import { AUTH, PREAUTH } from '../support/device-api-paths';
import { postAuth, signatureOf, signedAuthBody, tlsAgent, type AuthBody, publicKeyPem, withoutTokens } from '../support/mtls-device';
import { startMtlsPair, type MtlsPair } from '../support/mtls-pair';
import { makeTlsMaterial, type TlsMaterial } from '../support/tls-material';

// Four holes in mTLS admission, tried from the LAN with real TLS, CA-signed certificates of the
// attacker's own and the Mender server emulator upstream:
// - a TLS 1.2 renegotiation that swaps in a self-signed certificate naming the victim;
// - an auth body whose keys Go's encoding/json (deviceauth) reads case-insensitively: the gateway
//   would judge one identity and the server admit another;
// - two certificate holders racing for one unclaimed identity with different keys;
// - a device choosing the request id of the management calls made with the operator's token.

const USER = { email: 'gateway@example.com', password: 'gw-secret-Pa55' };
const VICTIM_MAC = '02:00:00:0d:00:01';
const ATTACKER_MAC = '02:00:00:0d:00:aa';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let dir: string;
let material: TlsMaterial;
let store: S3Store;
let attacker: DeviceCert;
let second: DeviceCert;
/** Self-signed, CN = the victim's MAC: what a renegotiation would swap in. */
let forged: DeviceCert;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mtls-admission-gaps-'));
  material = makeTlsMaterial(dir);
  attacker = makeDeviceCert(dir, 'attacker', material.ca, { subject: `/CN=${ATTACKER_MAC}` });
  second = makeDeviceCert(dir, 'second', material.ca, { subject: '/CN=02:00:00:0d:00:bb' });
  forged = makeSelfSignedDevice(dir, VICTIM_MAC);
  store = await startS3Store();
});
after(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

const agentFor = (device: DeviceCert) => tlsAgent({ ca: material.ca.cert, cert: device.cert, key: device.key });
const pubkeyOf = (device: DeviceCert) => publicKeyPem(device.key);
const shown = withoutTokens;
const victimAdmissions = (pair: MtlsPair) => pair.server.preauthorizations.filter((p) => p.identity.mac === VICTIM_MAC);

interface RenegotiationOutcome {
  renegotiated: boolean;
  /** Why the renegotiation or the connection failed. */
  error?: string;
  /** The HTTP answer to the auth request sent after a renegotiation, if any. */
  status?: number;
  body?: string;
}

/**
 * A TLS 1.2 device connects with `device`'s certificate, renegotiates (presenting `swapTo`
 * instead, when given) and then sends `auth` on the same connection. Bounded: 8 s.
 */
function renegotiateThenAuth(pair: MtlsPair, device: DeviceCert, auth: AuthBody, swapTo?: DeviceCert): Promise<RenegotiationOutcome> {
  return new Promise((resolve) => {
    const outcome: RenegotiationOutcome = { renegotiated: false };
    let answer = '';
    let finished = false;
    const done = (): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.destroy();
      const status = /^HTTP\/1\.1 (\d{3})/.exec(answer);
      if (status) outcome.status = Number(status[1]);
      if (answer) outcome.body = answer.slice(answer.indexOf('\r\n\r\n') + 4);
      resolve(outcome);
    };
    const timer = setTimeout(() => {
      outcome.error ??= 'timed out';
      done();
    }, 8000);
    const socket = tls.connect({
      host: '127.0.0.1',
      port: Number(new URL(pair.url).port),
      ca: readFileSync(material.ca.cert),
      cert: readFileSync(device.cert),
      key: readFileSync(device.key),
      maxVersion: 'TLSv1.2',
    });
    // A failed renegotiation surfaces here (Node does not call renegotiate's callback then).
    socket.on('error', (err) => {
      outcome.error ??= err.message;
      done();
    });
    socket.on('close', done);
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('utf8')));
    socket.once('secureConnect', () => {
      if (swapTo) socket.setKeyCert(tls.createSecureContext({ cert: readFileSync(swapTo.cert), key: readFileSync(swapTo.key) }));
      const started = socket.renegotiate({ rejectUnauthorized: true }, (err) => {
        if (err) {
          outcome.error ??= err.message;
          return done();
        }
        outcome.renegotiated = true;
        socket.write(
          `POST ${AUTH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${auth.raw.length}\r\n` +
            `X-MEN-Signature: ${auth.signature}\r\nConnection: close\r\n\r\n`,
        );
        socket.write(auth.raw);
      });
      if (!started) {
        outcome.error ??= 'renegotiation not started';
        done();
      }
    });
  });
}

describe('TLS renegotiation (IdentityAttribute mac = CN, RequireAuthKeyMatchesCertificate)', () => {
  let pair: MtlsPair;
  before(async () => {
    pair = await startMtlsPair({
      store,
      tls: material,
      user: USER,
      mtls: { IdentityAttribute: 'mac', IdentityCertificateField: 'CN', RequireAuthKeyMatchesCertificate: true },
    });
  });
  after(() => pair.close());

  it('attack: a TLS 1.2 client renegotiates its certified connection: refused, the connection closes', async () => {
    const own = signedAuthBody({ mac: ATTACKER_MAC }, attacker.key);
    const outcome = await renegotiateThenAuth(pair, attacker, own);
    assert.equal(
      outcome.renegotiated,
      false,
      `renegotiation succeeded: ${JSON.stringify({ ...outcome, body: shown(outcome.body ?? '') })}`,
    );
    assert.match(outcome.error ?? '', /no renegotiation/, 'the gateway refused it at once');
  });

  // Node's client keeps presenting its first certificate on renegotiation even after setKeyCert
  // (Node 20): the swap itself, should one get through, is refused by the handshake binding
  // (spec/unit/mtls-handshake-binding.test.ts).
  it("attack: a renegotiation that presents a self-signed certificate naming the victim is refused: the victim's identity is never admitted", async () => {
    const claim = signedAuthBody({ mac: VICTIM_MAC }, forged.key);
    const outcome = await renegotiateThenAuth(pair, attacker, claim, forged);
    const seen = JSON.stringify({ ...outcome, body: shown(outcome.body ?? '') });
    assert.notEqual(outcome.status, 200, `the forged identity was admitted: ${seen}`);
    assert.equal(outcome.renegotiated, false, `renegotiation succeeded: ${seen}`);
    assert.match(outcome.error ?? '', /no renegotiation/, seen);
    assert.deepEqual(victimAdmissions(pair), [], "no preauthorization of the victim's identity");
    assert.equal(
      pair.server.devices().some((d) => d.identity.mac === VICTIM_MAC),
      false,
      "the victim's identity never reached the server",
    );
    // The same device without tricks is still admitted for its own identity.
    const plain = await postAuth(pair.url, agentFor(attacker), signedAuthBody({ mac: ATTACKER_MAC }, attacker.key));
    assert.equal(plain.status, 200, shown(plain.body));
  });
});

describe('auth request keys as deviceauth reads them (IdentityAttribute mac = CN)', () => {
  let pair: MtlsPair;
  before(async () => {
    pair = await startMtlsPair({ store, tls: material, user: USER, mtls: { IdentityAttribute: 'mac', IdentityCertificateField: 'CN' } });
  });
  after(() => pair.close());

  for (const extra of ['ID_DATA', 'Id_Data']) {
    it(`attack: an auth body with its own id_data and the victim's under "${extra}" is refused with 400, nothing goes upstream`, async () => {
      const key = createPrivateKey(readFileSync(attacker.key));
      const raw = Buffer.from(
        `{"id_data":${JSON.stringify(JSON.stringify({ mac: ATTACKER_MAC }))},"pubkey":${JSON.stringify(pubkeyOf(attacker))},` +
          `"${extra}":${JSON.stringify(JSON.stringify({ mac: VICTIM_MAC }))}}`,
      );
      const calls = pair.server.calls.length;
      const reply = await postAuth(pair.url, agentFor(attacker), { raw, signature: signatureOf(raw, key) });
      assert.equal(reply.status, 400, shown(reply.body));
      const error = (JSON.parse(reply.body) as { error: string }).error;
      assert.match(error, new RegExp(`"${extra}".*id_data`));
      assert.deepEqual(
        pair.server.calls.slice(calls).map((c) => c.path),
        [],
        'nothing went upstream',
      );
    });
  }
});

describe('one identity, two keys at once (default settings)', () => {
  let pair: MtlsPair;
  before(async () => {
    pair = await startMtlsPair({ store, tls: material, user: USER });
  });
  after(() => pair.close());

  it('attack: two certificate holders claim an identity that has only a pending key, at the same moment: at most one is forced', async () => {
    const identity = { mac: '02:00:00:0d:00:77' };
    // A device that talked to the server without the gateway left a pending auth set.
    const direct = signedAuthBody(identity, material.server.key);
    const pending = await fetch(`${pair.server.url}${AUTH}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-MEN-Signature': direct.signature },
      body: direct.raw,
    });
    assert.equal(pending.status, 401, 'the direct request left a pending set');
    assert.equal(pair.server.devices().find((d) => d.identity.mac === identity.mac)?.status, 'pending');

    const [one, two] = await Promise.all([
      postAuth(pair.url, agentFor(attacker), signedAuthBody(identity, attacker.key)),
      postAuth(pair.url, agentFor(second), signedAuthBody(identity, second.key)),
    ]);
    const statuses = [one.status, two.status].sort();
    assert.deepEqual(statuses, [200, 403], `answers: ${shown(one.body)} / ${shown(two.body)}`);
    const refused = one.status === 403 ? one : two;
    assert.match((JSON.parse(refused.body) as { error: string }).error, /held by another key/);
    const forced = pair.server.preauthorizations.filter((p) => p.identity.mac === identity.mac && p.force);
    assert.equal(forced.length, 1, 'one forced preauthorization');
  });
});

describe('request ids of management calls (default settings)', () => {
  let pair: MtlsPair;
  before(async () => {
    pair = await startMtlsPair({ store, tls: material, user: USER });
  });
  after(() => pair.close());

  it("attack: a device's X-MEN-RequestID is not the id of the management calls made with the operator's token", async () => {
    const chosen = 'device-chosen-request-id-0001';
    const calls = pair.server.calls.length;
    const reply = await postAuth(pair.url, agentFor(attacker), signedAuthBody({ mac: ATTACKER_MAC }, attacker.key), {
      headers: { 'X-MEN-RequestID': chosen },
    });
    assert.equal(reply.status, 200, shown(reply.body));
    const made = pair.server.calls.slice(calls);
    const management = made.filter((c) => c.path.startsWith(PREAUTH));
    assert.ok(management.length > 0, 'a preauthorization was made');
    for (const call of management) {
      assert.notEqual(call.headers['x-men-requestid'], chosen, `${call.method} ${call.path} carried the device's id`);
      assert.match(String(call.headers['x-men-requestid']), UUID);
    }
    // The device's own request still goes upstream with its id, and the log ties the two.
    assert.deepEqual(
      made.filter((c) => c.path === AUTH).map((c) => c.headers['x-men-requestid']),
      [chosen],
    );
    assert.match(
      pair.captured.text(),
      new RegExp(`${management[0].headers['x-men-requestid']}.*${chosen}|${chosen}.*${management[0].headers['x-men-requestid']}`),
    );
  });

  it('attack: a request id with spaces or quotes is replaced by a fresh UUID before it reaches the log or the server', async () => {
    const bad = 'evil id" level=error msg="forged';
    const calls = pair.server.calls.length;
    const reply = await postAuth(pair.url, agentFor(attacker), signedAuthBody({ mac: ATTACKER_MAC }, attacker.key), {
      headers: { 'X-MEN-RequestID': bad },
    });
    assert.equal(reply.status, 200, shown(reply.body));
    const forwarded = pair.server.calls.slice(calls).filter((c) => c.path === AUTH);
    assert.equal(forwarded.length, 1);
    assert.match(String(forwarded[0].headers['x-men-requestid']), UUID);
    assert.doesNotMatch(pair.captured.text(), /evil id/);
  });
});
