import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import { metricsRegistry } from '../../lib/observe/metrics';
import { makeDeviceCert, type DeviceCert } from '../support/device-certs';
import { loginOperator } from '../support/devauth-operator';
import { postAuth, signedAuthBody, tlsAgent, publicKeyPem, withoutTokens } from '../support/mtls-device';
import { startMtlsPair, type MtlsPair } from '../support/mtls-pair';
import { makeTlsMaterial, type TlsMaterial } from '../support/tls-material';

// Item 3 of the trust boundary: a device with a valid certificate of its own must not take over
// another device's identity. From the LAN: real TLS, CA-signed certificates for the victim and
// the attacker, the gateway in-process in front of the Mender server emulator. By default the
// gateway never forces a preauthorization over an identity another key holds, nor over a key
// the operator rejected; with IdentityAttribute, id_data must name what the certificate names.

const USER = { email: 'gateway@example.com', password: 'gw-secret-Pa55' };
const NEXT = '/api/devices/v1/deployments/device/deployments/next?device_type=qemux86-64&artifact_name=release-1';

let dir: string;
let tls: TlsMaterial;
let store: S3Store;
let victim: DeviceCert;
let attacker: DeviceCert;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'identity-takeover-'));
  tls = makeTlsMaterial(dir);
  victim = makeDeviceCert(dir, 'victim', tls.ca, { subject: '/CN=02:00:00:0c:00:01' });
  attacker = makeDeviceCert(dir, 'attacker', tls.ca, {
    subject: '/CN=02:00:00:0c:00:aa',
    serial: '0A1B2C',
    // A name that holds the victim's inside it, after a comma: one name, not two.
    subjectAltNames: ['DNS:02:00:00:0c:00:aa', 'DNS:02:00:00:0c:00:ab, DNS:02:00:00:0c:00:01', 'email:attacker@example.com'],
  });
  store = await startS3Store();
});
after(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

const agentFor = (device: DeviceCert) => tlsAgent({ ca: tls.ca.cert, cert: device.cert, key: device.key });
const pubkeyOf = (device: DeviceCert) => publicKeyPem(device.key);
const errorOf = (body: string) => (JSON.parse(body) as { error: string }).error;
const shown = withoutTokens;

/** A device API call through the gateway with a device token: the status the server answered. */
function deviceCall(pair: MtlsPair, device: DeviceCert, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    https
      .get(`${pair.url}${NEXT}`, { agent: agentFor(device), headers: { Authorization: `Bearer ${token}` } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
}

/** The victim authenticates through the gateway: its JWT. */
async function admitVictim(pair: MtlsPair, identity: Record<string, string>): Promise<string> {
  const reply = await postAuth(pair.url, agentFor(victim), signedAuthBody(identity, victim.key));
  assert.equal(reply.status, 200, shown(reply.body));
  return reply.body;
}

async function refusals(reason: string): Promise<number> {
  const line = (await metricsRegistry.metrics())
    .split('\n')
    .find((l) => l.startsWith(`mender_gateway_mtls_refusals_total{reason="${reason}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('default settings (IdentityAttribute empty, AllowKeyReplacement false)', () => {
  let pair: MtlsPair;
  before(async () => {
    pair = await startMtlsPair({ store, tls, user: USER });
  });
  after(() => pair.close());

  it("attack: a certified device sends an admitted device's id_data with its own key: refused, the victim keeps its key and its token", async () => {
    const identity = { mac: '02:00:00:0c:00:01' };
    const token = await admitVictim(pair, identity);
    assert.equal(await deviceCall(pair, victim, token), 204, "the victim's token works");
    const counted = await refusals('key_replacement');

    const attack = await postAuth(pair.url, agentFor(attacker), signedAuthBody(identity, attacker.key));
    assert.equal(attack.status, 403, shown(attack.body));
    assert.match(errorOf(attack.body), /held by another key.*AllowKeyReplacement/);
    assert.ok(JSON.parse(attack.body).request_id);

    const held = pair.server.devices().find((d) => d.identity.mac === identity.mac)!;
    assert.deepEqual(held.pubkeys, [pubkeyOf(victim)], "the attacker's key was never added");
    assert.equal(held.status, 'accepted');
    assert.deepEqual(
      pair.server.preauthorizations.filter((p) => p.pubkey === pubkeyOf(attacker)).map((p) => [p.status, p.force]),
      [[409, false]],
      'never forced',
    );
    assert.equal(await deviceCall(pair, victim, token), 204, "the victim's token still works");
    assert.equal(
      (await postAuth(pair.url, agentFor(victim), signedAuthBody(identity, victim.key))).status,
      200,
      'the victim still authenticates',
    );
    assert.equal(await refusals('key_replacement'), counted + 1);
    assert.match(pair.captured.text(), /auth request refused: identity not given to this key.*held by another key/);
  });

  it('attack: a device the operator rejected is not forced back to preauthorized on its next auth requests', async () => {
    const identity = { mac: '02:00:00:0c:00:02' };
    await admitVictim(pair, identity);
    const operator = await loginOperator(pair.server.url, USER);
    const id = pair.server.deviceByIdentity(identity)!.id;
    const [set] = (await operator.device(id)).auth_sets;
    assert.equal(await operator.setStatus(id, set.id, 'rejected'), 204);
    const forcedBefore = pair.server.preauthorizations.filter((p) => p.force).length;
    const counted = await refusals('rejected_by_operator');

    // The first attempt may still pass the preauthorization cache (the server answers 401 and the
    // gateway forgets it); none may be admitted, and the last says why.
    const replies = [];
    for (let i = 0; i < 3; i++) replies.push(await postAuth(pair.url, agentFor(victim), signedAuthBody(identity, victim.key)));
    assert.deepEqual(
      replies.map((r) => r.status).filter((s) => s === 200),
      [],
      replies.map((r) => shown(r.body)).join('\n'),
    );
    assert.equal(replies[2].status, 403, shown(replies[2].body));
    assert.match(errorOf(replies[2].body), /rejected by the operator/);
    assert.deepEqual(
      (await operator.device(id)).auth_sets.map((a) => a.status),
      ['rejected'],
    );
    assert.equal(pair.server.preauthorizations.filter((p) => p.force).length, forcedBefore, 'nothing forced');
    assert.ok((await refusals('rejected_by_operator')) >= counted + 2);
  });

  it('a device re-authenticating with its own key is admitted, and the cache spares the management API', async () => {
    const identity = { mac: '02:00:00:0c:00:03' };
    await admitVictim(pair, identity);
    const calls = pair.server.calls.filter((c) => c.path.startsWith('/api/management/')).length;
    for (let i = 0; i < 3; i++) await admitVictim(pair, identity);
    assert.equal(pair.server.calls.filter((c) => c.path.startsWith('/api/management/')).length, calls);
  });
});

describe('IdentityAttribute: id_data bound to the certificate', () => {
  const cases = [
    {
      field: 'CN' as const,
      attribute: 'mac',
      refused: ['02:00:00:0c:00:01', '02:00:00:0C:00:AA', '02:00:00:0c:00:aa '],
      admitted: '02:00:00:0c:00:aa',
    },
    {
      field: 'SAN' as const,
      attribute: 'mac',
      // The victim's name and the rest of the comma name are parts of one SAN, never a SAN.
      refused: ['02:00:00:0c:00:01', '02:00:00:0c:00:ab', 'DNS:02:00:00:0c:00:aa'],
      admitted: '02:00:00:0c:00:aa',
    },
    { field: 'serial' as const, attribute: 'serial', refused: ['0A1B2D', 'A1B2C0', 'not-hex'], admitted: '00:0a:1b:2c' },
  ];
  for (const { field, attribute, refused, admitted } of cases) {
    it(`attack: IdentityCertificateField ${field}: an id_data whose "${attribute}" is not the certificate's is refused, even for a new identity`, async () => {
      const pair = await startMtlsPair({ store, tls, user: USER, mtls: { IdentityAttribute: attribute, IdentityCertificateField: field } });
      try {
        const counted = await refusals('identity_mismatch');
        for (const claimed of refused) {
          const reply = await postAuth(pair.url, agentFor(attacker), signedAuthBody({ [attribute]: claimed }, attacker.key));
          assert.equal(reply.status, 400, `${claimed}: ${shown(reply.body)}`);
          assert.match(errorOf(reply.body), new RegExp(`id_data attribute "${attribute}" does not match the client certificate's`));
          assert.ok(!reply.body.includes(claimed), 'the claimed value is not echoed');
        }
        const missing = await postAuth(pair.url, agentFor(attacker), signedAuthBody({ other: admitted }, attacker.key));
        assert.equal(missing.status, 400);
        assert.match(errorOf(missing.body), new RegExp(`id_data has no "${attribute}" attribute`));
        assert.equal(pair.server.calls.length, 0, 'nothing went upstream');
        assert.equal(await refusals('identity_mismatch'), counted + refused.length + 1);

        const own = await postAuth(pair.url, agentFor(attacker), signedAuthBody({ [attribute]: admitted, other: 'x' }, attacker.key));
        assert.equal(own.status, 200, `the identity its certificate names: ${shown(own.body)}`);
      } finally {
        await pair.close();
      }
    });
  }
});

describe('AllowKeyReplacement (the escape hatch: the product behaviour)', () => {
  it("a new key replaces the identity's accepted one, and a rejection is forced back", async () => {
    const pair = await startMtlsPair({ store, tls, user: USER, mtls: { AllowKeyReplacement: true } });
    try {
      const identity = { mac: '02:00:00:0c:00:04' };
      await admitVictim(pair, identity);
      const replaced = await postAuth(pair.url, agentFor(attacker), signedAuthBody(identity, attacker.key));
      assert.equal(replaced.status, 200, shown(replaced.body));
      const id = pair.server.deviceByIdentity(identity)!.id;
      const operator = await loginOperator(pair.server.url, USER);
      const sets = (await operator.device(id)).auth_sets;
      assert.deepEqual(
        sets.map((a) => [a.pubkey === pubkeyOf(attacker), a.status]),
        [
          [false, 'rejected'],
          [true, 'accepted'],
        ],
      );
      assert.ok(pair.server.preauthorizations.every((p) => p.force && p.status === 201));
      assert.equal(await operator.setStatus(id, sets[1].id, 'rejected'), 204);
      let last = 0;
      for (let i = 0; i < 2; i++) last = (await postAuth(pair.url, agentFor(attacker), signedAuthBody(identity, attacker.key))).status;
      assert.equal(last, 200, 'forced back');
    } finally {
      await pair.close();
    }
  });
});
