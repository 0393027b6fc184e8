import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startMenderServer, type MenderServer } from '../../fixtures/mender-server';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import { parseAuthRequest } from '../../lib/mtls/auth-request';
import { createManagementSession } from '../../lib/mtls/management-session';
import { createPreauthorizer } from '../../lib/mtls/preauthorize';
import { createUpstream } from '../../lib/proxy/upstream';
import { captureLog } from '../support/capture-log';
import { makeDeviceCert, type DeviceCert } from '../support/device-certs';
import { testConfig } from '../support/gateway-config';
import { postAuth, signedAuthBody, tlsAgent } from '../support/mtls-device';
import { startMtlsPair, type MtlsPairOptions } from '../support/mtls-pair';
import { makeTlsMaterial, type TlsMaterial } from '../support/tls-material';
import { AUTH, LOGIN, PREAUTH } from '../support/device-api-paths';

// mTLS admission (docs/mtls.md): a CA-signed device is preauthorized upstream with its own key
// (force only over its own pending auth set) and gets the server's JWT; cache, X-Forwarded-For,
// bad input answered by the gateway alone, one management login however many devices ask, login
// failures. Takeovers of another device's identity: spec/security/identity-takeover.test.ts.

const USER = { email: 'gateway@example.com', password: 'gw-secret-Pa55' };

let dir: string;
let tls: TlsMaterial;
let store: S3Store;
const devices: Record<'rsa' | 'ec' | 'ed25519', DeviceCert> = {} as never;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mtls-admission-'));
  tls = makeTlsMaterial(dir);
  for (const keyType of ['rsa', 'ec', 'ed25519'] as const) devices[keyType] = makeDeviceCert(dir, `device-${keyType}`, tls.ca, { keyType });
});
before(async () => {
  store = await startS3Store();
});
after(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

const startPair = (opts: Omit<MtlsPairOptions, 'store' | 'tls' | 'user'> = {}) => startMtlsPair({ store, tls, user: USER, ...opts });

const agentFor = (device: DeviceCert) => tlsAgent({ ca: tls.ca.cert, cert: device.cert, key: device.key });
const callsTo = (server: MenderServer, path: string) => server.calls.filter((c) => c.path.split('?')[0] === path);

describe('mTLS admission', () => {
  let pair: Awaited<ReturnType<typeof startPair>>;
  before(async () => {
    pair = await startPair();
  });
  after(() => pair.close());

  for (const keyType of ['rsa', 'ec', 'ed25519'] as const) {
    it(`preauthorizes a pending-by-default device with its own ${keyType} key and returns the server's JWT unchanged`, async () => {
      const device = devices[keyType];
      const identity = { mac: `02:00:00:06:00:0${keyType.length}` };
      const body = signedAuthBody(identity, device.key);
      const reply = await postAuth(pair.url, agentFor(device), body);
      assert.equal(reply.status, 200, reply.body);
      assert.match(String(reply.headers['content-type']), /^application\/jwt/);
      assert.match(reply.body, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'bare JWT, no quotes or newline');
      const pubkey = createPublicKey(readFileSync(device.key)).export({ type: 'spki', format: 'pem' }).toString();
      const preauth = pair.server.preauthorizations.filter((p) => p.identity.mac === identity.mac);
      assert.deepEqual(
        preauth.map((p) => ({ pubkey: p.pubkey, force: p.force, status: p.status })),
        [{ pubkey, force: false, status: 201 }],
        'a new identity needs no force',
      );
      const dev = pair.server.devices().find((d) => d.identity.mac === identity.mac);
      assert.equal(dev?.status, 'accepted');
      // The emulator verified X-MEN-Signature over the body it received: the bytes crossed unchanged.
      const forwarded = callsTo(pair.server, AUTH).filter((c) => c.deviceId === dev!.id);
      assert.equal(forwarded.length, 1);
      assert.equal(forwarded[0].headers['x-forwarded-for'], '127.0.0.1');
    });
  }

  it('forwards a chunked auth request byte for byte too, and caches the preauthorization', async () => {
    const identity = { mac: '02:00:00:06:01:01' };
    const body = signedAuthBody(identity, devices.ec.key);
    const first = await postAuth(pair.url, agentFor(devices.ec), body, { chunked: true });
    assert.equal(first.status, 200, first.body);
    const preauthsBefore = callsTo(pair.server, PREAUTH).length;
    for (let i = 0; i < 3; i++) {
      const again = await postAuth(pair.url, agentFor(devices.ec), body);
      assert.equal(again.status, 200, again.body);
    }
    assert.equal(callsTo(pair.server, PREAUTH).length, preauthsBefore, 'a cached device causes no further management call');
  });

  it('a device the server holds pending with the same key (it asked without the gateway) is preauthorized with force', async () => {
    const identity = { mac: '02:00:00:06:01:02' };
    const body = signedAuthBody(identity, devices.rsa.key);
    const direct = await fetch(`${pair.server.url}${AUTH}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-MEN-Signature': body.signature },
      body: body.raw,
    });
    assert.equal(direct.status, 401, 'pending: the server accepts nobody by itself');
    assert.equal(pair.server.devices().find((d) => d.identity.mac === identity.mac)?.status, 'pending');
    const reply = await postAuth(pair.url, agentFor(devices.rsa), body);
    assert.equal(reply.status, 200, reply.body);
    assert.deepEqual(
      pair.server.preauthorizations.filter((p) => p.identity.mac === identity.mac).map((p) => [p.status, p.force]),
      [
        [409, false],
        [201, true],
      ],
    );
    assert.equal(pair.server.devices().find((d) => d.identity.mac === identity.mac)?.status, 'accepted');
  });

  it('sends the device address on the management call made on its behalf', () => {
    const preauths = callsTo(pair.server, PREAUTH);
    assert.ok(preauths.length >= 3);
    for (const call of preauths) assert.equal(call.headers['x-forwarded-for'], '127.0.0.1');
  });

  it('answers bad signature, malformed and oversized bodies itself (400/413 JSON), nothing upstream', async () => {
    const upstreamBefore = pair.server.calls.length;
    const identity = { mac: '02:00:00:06:02:01' };
    const good = signedAuthBody(identity, devices.ec.key);
    const other = signedAuthBody(identity, devices.rsa.key);
    const cases: [string, { raw: Buffer; signature?: string }, number, RegExp][] = [
      ['signature by another key', { raw: good.raw, signature: other.signature }, 400, /signature verification failed/],
      [
        'body changed after signing',
        { raw: Buffer.from(good.raw.toString().replace('06:02:01', '06:02:02')), signature: good.signature },
        400,
        /signature verification failed/,
      ],
      ['signature missing', { raw: good.raw }, 400, /missing request signature/],
      ['signature not base64', { raw: good.raw, signature: '!!!' }, 400, /signature verification failed/],
      ['not JSON', { raw: Buffer.from('{"id_data":'), signature: 'AAAA' }, 400, /not JSON/],
      ['id_data not an object', { raw: Buffer.from('{"id_data":"[1]","pubkey":"x"}'), signature: 'AAAA' }, 400, /id_data/],
      [
        'pubkey not a key',
        {
          raw: Buffer.from('{"id_data":"{\\"mac\\":\\"x\\"}","pubkey":"-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----\\n"}'),
          signature: 'AAAA',
        },
        400,
        /pubkey/,
      ],
      ['oversized', { raw: Buffer.alloc(200 * 1024, 0x20), signature: 'AAAA' }, 413, /larger than/],
    ];
    for (const [what, body, status, error] of cases) {
      const reply = await postAuth(pair.url, agentFor(devices.ec), body);
      assert.equal(reply.status, status, `${what}: ${reply.body}`);
      const json = JSON.parse(reply.body) as { error: string; request_id: string };
      assert.match(json.error, error, what);
      assert.ok(json.request_id, `${what}: request_id`);
    }
    const oversizedChunked = await postAuth(
      pair.url,
      agentFor(devices.ec),
      { raw: Buffer.alloc(200 * 1024, 0x20), signature: 'AAAA' },
      { chunked: true },
    );
    assert.equal(oversizedChunked.status, 413);
    assert.equal(pair.server.calls.length, upstreamBefore, 'the emulator saw none of them');
  });

  it('keeps the secrets out of its log', () => {
    const text = pair.captured.text();
    assert.doesNotMatch(text, new RegExp(USER.password));
    assert.doesNotMatch(text, /eyJ[\w-]{10,}\.[\w-]{10,}/);
    assert.match(text, /device admitted by client certificate/);
  });
});

describe('management login', () => {
  it('100 devices at once with an expired management token: exactly one login', async () => {
    // The first token lives 3 s; the renewed one lasts, however long the burst takes on a busy machine.
    const pair = await startPair({ jwtLifetimeSeconds: 3 });
    try {
      const first = await postAuth(pair.url, agentFor(devices.ec), signedAuthBody({ mac: '02:00:00:06:03:00' }, devices.ec.key));
      assert.equal(first.status, 200, first.body);
      assert.equal(pair.server.logins.length, 1);
      await new Promise((resolve) => setTimeout(resolve, 3100));
      pair.server.setJwtLifetime(3600);
      const agent = tlsAgent({ ca: tls.ca.cert, cert: devices.ec.cert, key: devices.ec.key }, { keepAlive: true, maxSockets: 100 });
      const bodies = Array.from({ length: 100 }, (_, i) =>
        signedAuthBody({ mac: `02:00:00:06:04:${i.toString(16).padStart(2, '0')}` }, devices.ec.key),
      );
      const replies = await Promise.all(bodies.map((b) => postAuth(pair.url, agent, b)));
      agent.destroy();
      assert.deepEqual(
        replies.map((r) => r.status),
        Array(100).fill(200),
      );
      assert.equal(pair.server.logins.length, 2, 'one login at start, exactly one after expiry');
      assert.ok(pair.server.logins.every((l) => l.ok));
    } finally {
      await pair.close();
    }
  });

  it('a 401 on a token our clock still trusts: 100 concurrent preauthorizations, exactly one new login', async () => {
    const server = await startMenderServer({ store, users: [USER], jwtLifetimeSeconds: 3 });
    const upstream = createUpstream(testConfig({ UpstreamServer: { URL: server.url } }).UpstreamServer, {});
    try {
      // The gateway's clock stands still: it keeps believing in tokens the server has expired.
      const session = createManagementSession({
        upstream,
        username: USER.email,
        password: USER.password,
        log: captureLog().log,
        clock: () => 0,
      });
      const preauthorizer = createPreauthorizer({ upstream, session, log: captureLog().log });
      await session.token();
      await new Promise((resolve) => setTimeout(resolve, 3100));
      server.setJwtLifetime(3600); // the renewed token outlasts the retries, however slow the machine
      const requests = Array.from({ length: 100 }, (_, i) => {
        const parsed = parseAuthRequest(signedAuthBody({ mac: `02:00:00:06:05:${i.toString(16).padStart(2, '0')}` }, devices.ec.key).raw);
        assert.ok(parsed.ok);
        return parsed.request;
      });
      await Promise.all(requests.map((r) => preauthorizer.ensure(r, { clientAddress: '127.0.0.1', requestId: 'test' })));
      assert.equal(server.logins.length, 2);
      assert.equal(server.preauthorizations.filter((p) => p.status === 201).length, 100);
      assert.equal(callsTo(server, PREAUTH).filter((c) => c.status === 401).length, 100);
    } finally {
      upstream.close();
      await server.close();
    }
  });

  it('a wrong password: the device gets a 5xx JSON, the log says why without the password, other traffic flows', async () => {
    const pair = await startPair({ password: 'wrong-Pa55word' });
    try {
      const body = signedAuthBody({ mac: '02:00:00:06:06:01' }, devices.ec.key);
      const replies = await Promise.all([1, 2, 3].map(() => postAuth(pair.url, agentFor(devices.ec), body)));
      for (const reply of replies) {
        assert.ok(reply.status >= 500 && reply.status < 600, `status ${reply.status}`);
        assert.match((JSON.parse(reply.body) as { error: string }).error, /cannot log in/);
      }
      assert.ok(pair.server.logins.length >= 1 && pair.server.logins.length <= 3);
      assert.equal(callsTo(pair.server, AUTH).length, 0, 'no auth request forwarded without preauthorization');
      const text = pair.captured.text();
      assert.match(text, /management login failed.*status=401.*MenderPassword/);
      assert.doesNotMatch(text, /wrong-Pa55word/);
      // Other traffic keeps flowing: a device call is passed through (the emulator answers 401).
      const other = await new Promise<number>((resolve, reject) => {
        https
          .get(
            `${pair.url}/api/devices/v1/deployments/device/deployments/next?device_type=x&artifact_name=y`,
            { agent: agentFor(devices.ec) },
            (res) => {
              res.resume();
              resolve(res.statusCode ?? 0);
            },
          )
          .on('error', reject);
      });
      assert.equal(other, 401);
      assert.equal(callsTo(pair.server, '/api/devices/v1/deployments/device/deployments/next').length, 1);
    } finally {
      await pair.close();
    }
  });

  it('a Mender server that is down: 502 JSON, and the login is tried again for the next device', async () => {
    const pair = await startPair();
    await pair.server.close();
    let closed = false;
    try {
      const body = signedAuthBody({ mac: '02:00:00:06:07:01' }, devices.ec.key);
      for (let i = 0; i < 2; i++) {
        const reply = await postAuth(pair.url, agentFor(devices.ec), body);
        assert.equal(reply.status, 502, reply.body);
        assert.match((JSON.parse(reply.body) as { error: string }).error, /unreachable/);
      }
      // The second failure within the minute is counted, not logged again; the gateway's close
      // writes the count (lib/observe/repeated-lines.ts): two tries, one line and its count.
      await pair.gateway.close(0);
      closed = true;
      const text = pair.captured.text();
      assert.equal(text.match(/management API\) unreachable/g)?.length, 2, text);
      assert.match(text, /management API\) unreachable: \w+ \(1 more in the last \d+ s; each is in the access log\).*repeated=1/);
    } finally {
      if (!closed) await pair.gateway.close(0);
    }
  });
});

describe('mTLS options', () => {
  it('RequireAuthKeyMatchesCertificate: an auth key that is not the certificate key is refused (400), the certificate key is admitted', async () => {
    const pair = await startPair({ mtls: { RequireAuthKeyMatchesCertificate: true } });
    try {
      const identity = { mac: '02:00:00:06:08:01' };
      const mismatch = await postAuth(pair.url, agentFor(devices.ec), signedAuthBody(identity, devices.rsa.key));
      assert.equal(mismatch.status, 400);
      assert.match(mismatch.body, /certificate key and auth request key don't match/);
      assert.equal(pair.server.calls.length, 0);
      const match = await postAuth(pair.url, agentFor(devices.rsa), signedAuthBody(identity, devices.rsa.key));
      assert.equal(match.status, 200, match.body);
    } finally {
      await pair.close();
    }
  });

  it('without it (the default) any auth key of a certified device is preauthorized, as the product since 2.0', async () => {
    const pair = await startPair();
    try {
      const reply = await postAuth(pair.url, agentFor(devices.ec), signedAuthBody({ mac: '02:00:00:06:09:01' }, devices.ed25519.key));
      assert.equal(reply.status, 200, reply.body);
    } finally {
      await pair.close();
    }
  });

  it('EnableCache false: every auth request preauthorizes again, a known device without force (its own key is accepted)', async () => {
    const pair = await startPair({ mtls: { EnableCache: false } });
    try {
      const body = signedAuthBody({ mac: '02:00:00:06:0a:01' }, devices.ec.key);
      for (let i = 0; i < 3; i++) assert.equal((await postAuth(pair.url, agentFor(devices.ec), body)).status, 200);
      assert.equal(callsTo(pair.server, PREAUTH).length, 3);
      assert.deepEqual(
        pair.server.preauthorizations.map((p) => [p.status, p.force]),
        [
          [201, false],
          [409, false],
          [409, false],
        ],
      );
      const id = pair.server.deviceByIdentity({ mac: '02:00:00:06:0a:01' })!.id;
      assert.equal(callsTo(pair.server, `${PREAUTH}/${id}`).length, 2, 'its auth sets read after each 409');
      assert.equal(callsTo(pair.server, LOGIN).length, 1);
    } finally {
      await pair.close();
    }
  });

  it('an auth request over plain HTTP while mTLS is on: 403 JSON, nothing upstream, even with AllowPlainHTTP', async () => {
    const body = signedAuthBody({ mac: '02:00:00:06:0b:01' }, devices.ec.key);
    // The HTTP listener refuses it first; with AllowPlainHTTP the auth route itself still wants a certificate.
    for (const [allowPlainHttp, error] of [
      [false, /^mTLS is enabled: use HTTPS with a client certificate/],
      [true, /client certificate required/],
    ] as const) {
      const pair = await startPair({ http: true, mtls: { AllowPlainHTTP: allowPlainHttp } });
      try {
        const status = await new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = http.request(
            `http://127.0.0.1:${pair.gateway.addresses.http!.port}${AUTH}`,
            { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-MEN-Signature': body.signature } },
            (res) => {
              let text = '';
              res.on('data', (c: Buffer) => (text += c));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
            },
          );
          req.on('error', reject);
          req.end(body.raw);
        });
        assert.equal(status.status, 403);
        assert.match((JSON.parse(status.body) as { error: string }).error, error);
        assert.equal(pair.server.calls.length, 0);
      } finally {
        await pair.close();
      }
    }
  });
});
