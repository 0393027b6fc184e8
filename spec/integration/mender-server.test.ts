import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import { startMenderServer, type MenderServer } from '../../fixtures/mender-server';
import {
  PROTO_CONTROL,
  PROTO_FILE_TRANSFER,
  PROTO_SHELL,
  decodeBody,
  decodeProtoMsg,
  encodeProtoMsg,
  type ProtoMsg,
} from '../../fixtures/mender-server/protomsg';
import { MenderSpec } from '../support/spec-validator';
import { GatewayContract } from '../support/gateway-contract';
import { AUTH, NEXT, NEXT_V2, INVENTORY, LOGIN, PREAUTH } from '../support/device-api-paths';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

function call(
  base: string,
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: string | Buffer; chunked?: boolean } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...opts.headers };
    if (opts.body !== undefined && !opts.chunked) headers['Content-Length'] = Buffer.byteLength(opts.body);
    const req = http.request(base + path, { method, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

type KeyType = 'rsa' | 'ec' | 'ed25519';

class FakeDevice {
  readonly privateKey: KeyObject;
  readonly pubkey: string;
  token = '';

  constructor(
    readonly keyType: KeyType,
    readonly identity: Record<string, string>,
  ) {
    const pair =
      keyType === 'rsa'
        ? generateKeyPairSync('rsa', { modulusLength: 2048 })
        : keyType === 'ec'
          ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
          : generateKeyPairSync('ed25519');
    this.privateKey = pair.privateKey;
    this.pubkey = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  }

  /** The body as Go's json.Encoder writes it: compact, with a trailing newline. */
  authBody(): Buffer {
    return Buffer.from(JSON.stringify({ id_data: JSON.stringify(this.identity), tenant_token: '', pubkey: this.pubkey }) + '\n');
  }

  signature(body: Buffer): string {
    return sign(this.keyType === 'ed25519' ? null : 'sha256', body, this.privateKey).toString('base64');
  }

  async authenticate(base: string, tamper = false): Promise<Reply> {
    const body = this.authBody();
    const sig = Buffer.from(this.signature(body), 'base64');
    if (tamper) sig[sig.length - 5] ^= 0xff;
    const r = await call(base, 'POST', '/api/devices/v1/authentication/auth_requests', {
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer', 'X-MEN-Signature': sig.toString('base64') },
      body,
    });
    if (r.status === 200) this.token = r.text;
    return r;
  }

  /** A device API call as the 3.4 client makes it: JWT, JSON, chunked body. */
  api(base: string, method: string, path: string, body?: unknown): Promise<Reply> {
    const headers: Record<string, string> = { Authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    return call(base, method, path, { headers, body: body === undefined ? undefined : JSON.stringify(body) + '\n', chunked: true });
  }
}

function decodeJwt(token: string): { header: Record<string, unknown>; claims: Record<string, unknown> } {
  const [h, c] = token.split('.');
  return { header: JSON.parse(Buffer.from(h, 'base64url').toString()), claims: JSON.parse(Buffer.from(c, 'base64url').toString()) };
}

function assertMenderError(spec: MenderSpec | null, method: string, template: string, r: Reply, status: number): void {
  assert.equal(r.status, status);
  const body = JSON.parse(r.text) as { request_id?: string };
  contract.assert('error', body);
  spec?.assertSchema('Error', body);
  // Some documented error statuses (e.g. status 409) carry no schema in the spec.
  if (spec?.documentsBody(method, template, status)) spec.assertResponse(method, template, status, body);
  assert.ok(r.headers['x-men-requestid'], 'X-MEN-RequestID header');
  assert.equal(body.request_id, r.headers['x-men-requestid']);
}

const contract = new GatewayContract();

const STATUS_T = '/api/devices/v1/deployments/device/deployments/{id}/status';
const LOG_T = '/api/devices/v1/deployments/device/deployments/{id}/log';
const basic = (user: string, pass: string): string => 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64');

describe('mender server emulator', () => {
  // Our own contract always; Mender's OpenAPI file as the cross-check when it is there.
  const spec = MenderSpec.ifPresent();
  let store: S3Store;
  let server: MenderServer;
  let dir: string;
  let artifactPath: string;
  const artifactBytes = Buffer.alloc(8192, 7);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mender-server-test-'));
    artifactPath = join(dir, 'release-1.mender');
    await writeFile(artifactPath, artifactBytes);
    store = await startS3Store();
    server = await startMenderServer({ store, linkExpirySeconds: 900 });
  });
  after(async () => {
    await server?.close();
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  for (const keyType of ['rsa', 'ec', 'ed25519'] as const) {
    it(`authenticates a ${keyType} device once accepted: pending 401, then a raw RS256 JWT with the real claims`, async () => {
      const device = new FakeDevice(keyType, { mac: `02:00:00:00:01:${keyType.length}` });
      assertMenderError(spec, 'post', AUTH, await device.authenticate(server.url), 401);
      const id = server.deviceByIdentity(device.identity)!.id;
      assert.equal(server.devices().find((d) => d.id === id)?.status, 'pending');
      server.acceptDevice(id);
      const r = await device.authenticate(server.url);
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'application/jwt');
      contract.assert('device-jwt', r.text);
      spec?.assertResponse('post', AUTH, 200, r.text);
      assert.match(r.text, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'bare token: no quotes, no newline');
      const { header, claims } = decodeJwt(r.text);
      assert.deepEqual(header, { alg: 'RS256', typ: 'JWT' });
      assert.equal(claims.sub, id);
      assert.equal(claims.iss, 'Mender');
      assert.equal(claims['mender.device'], true);
      assert.equal(typeof claims.jti, 'string');
      assert.ok((claims.exp as number) > (claims.iat as number));
      assert.equal(server.calls.at(-1)?.deviceId, id);
    });
  }

  it('answers 401 for a bad signature from an accepted device', async () => {
    const device = new FakeDevice('ec', { mac: '02:00:00:00:02:01' });
    await device.authenticate(server.url);
    server.acceptDevice(server.deviceByIdentity(device.identity)!.id);
    const r = await device.authenticate(server.url, true);
    assertMenderError(spec, 'post', AUTH, r, 401);
    assert.match(r.text, /signature verification failed/);
  });

  it('answers 400 for an auth request without a signature or with a bad pubkey', async () => {
    const device = new FakeDevice('ed25519', { mac: '02:00:00:00:02:02' });
    const noSig = await call(server.url, 'POST', AUTH, { headers: { 'Content-Type': 'application/json' }, body: device.authBody() });
    assertMenderError(spec, 'post', AUTH, noSig, 400);
    const badKey = await call(server.url, 'POST', AUTH, {
      headers: { 'Content-Type': 'application/json', 'X-MEN-Signature': 'AAAA' },
      body: JSON.stringify({ id_data: '{"mac":"x"}', tenant_token: '', pubkey: 'nope' }),
    });
    assertMenderError(spec, 'post', AUTH, badKey, 400);
  });

  it('requires a valid device JWT on every other device call (401), and takes chunked inventory with exactly 200', async () => {
    const device = new FakeDevice('rsa', { mac: '02:00:00:00:03:01' });
    await device.authenticate(server.url);
    const id = server.deviceByIdentity(device.identity)!.id;
    server.acceptDevice(id);
    assert.equal((await device.authenticate(server.url)).status, 200);
    const anonymous = await call(server.url, 'PUT', INVENTORY, { headers: { 'Content-Type': 'application/json' }, body: '[]' });
    assertMenderError(spec, 'put', INVENTORY, anonymous, 401);
    const forged = await call(server.url, 'PUT', INVENTORY, {
      headers: { Authorization: `Bearer ${device.token.slice(0, -4)}AAAA`, 'Content-Type': 'application/json' },
      body: '[]',
    });
    assert.equal(forged.status, 401);
    const attrs = [
      { name: 'device_type', value: 'test-device' },
      { name: 'artifact_name', value: 'factory-image-0' },
    ];
    const ok = await device.api(server.url, 'PUT', INVENTORY, attrs);
    assert.equal(ok.status, 200);
    assert.equal(ok.text, '');
    assert.deepEqual(server.devices().find((d) => d.id === id)?.inventory, {
      device_type: 'test-device',
      artifact_name: 'factory-image-0',
    });
    const patched = await device.api(server.url, 'PATCH', INVENTORY, [{ name: 'extra', value: '1' }]);
    assert.equal(patched.status, 200);
    assert.equal(server.devices().find((d) => d.id === id)?.inventory.extra, '1');
    // A rejected auth set makes its tokens worthless.
    const login = await call(server.url, 'POST', LOGIN, { headers: { Authorization: basic('admin@example.com', 'correcthorse') } });
    const list = await call(server.url, 'GET', '/api/management/v2/devauth/devices', {
      headers: { Authorization: `Bearer ${login.text}` },
    });
    spec?.assertResponse('get', '/api/management/v2/devauth/devices', 200, JSON.parse(list.text));
    const listed = (JSON.parse(list.text) as { id: string; auth_sets: { id: string }[] }[]).find((d) => d.id === id)!;
    const reject = await call(server.url, 'PUT', `/api/management/v2/devauth/devices/${id}/auth/${listed.auth_sets[0].id}/status`, {
      headers: { Authorization: `Bearer ${login.text}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ status: 'rejected' }),
    });
    assert.equal(reject.status, 204);
    assert.equal((await device.api(server.url, 'PUT', INVENTORY, attrs)).status, 401);
    assert.equal(server.devices().find((d) => d.id === id)?.status, 'rejected');
  });

  describe('deployments', () => {
    let device: FakeDevice;
    let deviceId: string;
    let deploymentId: string;
    const installed = { artifact_name: 'factory-image-0', device_type: 'test-device' };

    before(async () => {
      device = new FakeDevice('ec', { mac: '02:00:00:00:04:01' });
      await device.authenticate(server.url);
      deviceId = server.deviceByIdentity(device.identity)!.id;
      server.acceptDevice(deviceId);
      await device.authenticate(server.url);
    });

    it('answers 204 from next when nothing targets the device, and 404 to POST v2 by default', async () => {
      assert.equal((await device.api(server.url, 'POST', NEXT, installed)).status, 204);
      const v2 = await device.api(server.url, 'POST', NEXT_V2, { device_provides: installed, update_control_map: true });
      assert.equal(v2.status, 404);
      assert.deepEqual(Object.keys(JSON.parse(v2.text)).sort(), ['error', 'request_id']);
    });

    it('serves a deployment to its device through POST v1 and GET v1, with a working presigned link', async () => {
      const artifact = await server.uploadArtifact(artifactPath, { name: 'release-1', deviceTypes: ['test-device'] });
      deploymentId = server.createDeployment({ name: 'd1', artifactName: 'release-1', devices: [deviceId] }).id;
      const post = await device.api(server.url, 'POST', NEXT, installed);
      assert.equal(post.status, 200);
      const body = JSON.parse(post.text) as {
        id: string;
        artifact: { id: string; artifact_name: string; source: { uri: string; expire: string }; device_types_compatible: string[] };
      };
      contract.assert('deployment-instructions', body);
      spec?.assertResponse('get', NEXT, 200, body);
      assert.equal(body.id, deploymentId);
      assert.equal(body.artifact.id, artifact.id);
      assert.equal(body.artifact.artifact_name, 'release-1');
      assert.deepEqual(body.artifact.device_types_compatible, ['test-device']);
      assert.match(body.artifact.source.uri, /^http:\/\/127\.0\.0\.1:\d+\/mender-artifact-storage\/.*X-Amz-Expires=900&.*X-Amz-Signature=/);
      const expireIn = Date.parse(body.artifact.source.expire) - Date.now();
      assert.ok(expireIn > 800_000 && expireIn <= 900_000, `expire ${body.artifact.source.expire}`);
      const download = await call(body.artifact.source.uri, 'GET', '');
      assert.equal(download.status, 200);
      assert.equal(download.headers['content-length'], String(artifactBytes.length));
      const get = await device.api(server.url, 'GET', `${NEXT}?artifact_name=factory-image-0&device_type=test-device`);
      assert.equal(get.status, 200);
      assert.equal((JSON.parse(get.text) as { id: string }).id, deploymentId);
      const other = new FakeDevice('ed25519', { mac: '02:00:00:00:04:02' });
      await other.authenticate(server.url);
      server.acceptDevice(server.deviceByIdentity(other.identity)!.id);
      await other.authenticate(server.url);
      assert.equal((await other.api(server.url, 'POST', NEXT, installed)).status, 204, 'an untargeted device gets nothing');
      assertMenderError(spec, 'get', NEXT, await device.api(server.url, 'POST', NEXT, { artifact_name: '' }), 400);
    });

    it('records statuses with exact 204 and stops offering the deployment after a final status', async () => {
      for (const status of ['downloading', 'downloading', 'downloading', 'installing', 'installing']) {
        const r = await device.api(server.url, 'PUT', `/api/devices/v1/deployments/device/deployments/${deploymentId}/status`, { status });
        assert.equal(r.status, 204);
        assert.equal(r.text, '');
      }
      assert.equal((await device.api(server.url, 'POST', NEXT, installed)).status, 200, 'still offered until final');
      assertMenderError(
        spec,
        'put',
        STATUS_T,
        await device.api(server.url, 'PUT', `/api/devices/v1/deployments/device/deployments/${deploymentId}/status`, { status: 'bogus' }),
        400,
      );
      assert.equal(
        (
          await device.api(server.url, 'PUT', `/api/devices/v1/deployments/device/deployments/${deploymentId}/status`, {
            status: 'success',
          })
        ).status,
        204,
      );
      assert.deepEqual(server.statuses(deploymentId, deviceId), [
        'downloading',
        'downloading',
        'downloading',
        'installing',
        'installing',
        'success',
      ]);
      assert.equal((await device.api(server.url, 'POST', NEXT, { artifact_name: 'release-1', device_type: 'test-device' })).status, 204);
    });

    it('answers 409 to status reports once a deployment is aborted', async () => {
      const d2 = server.createDeployment({ name: 'd2', artifactName: 'release-1', devices: [deviceId] }).id;
      const path = `/api/devices/v1/deployments/device/deployments/${d2}/status`;
      assert.equal((await device.api(server.url, 'PUT', path, { status: 'downloading' })).status, 204);
      server.abortDeployment(d2);
      assertMenderError(spec, 'put', STATUS_T, await device.api(server.url, 'PUT', path, { status: 'downloading' }), 409);
      assert.equal((await device.api(server.url, 'POST', NEXT, installed)).status, 204, 'an aborted deployment is not offered');
    });

    it('takes logs with 204 and answers 400 to an empty messages array', async () => {
      const path = `/api/devices/v1/deployments/device/deployments/${deploymentId}/log`;
      assertMenderError(spec, 'put', LOG_T, await device.api(server.url, 'PUT', path, { messages: [] }), 400);
      const messages = [{ level: 'info', message: 'Running Mender client version: 3.4.0', timestamp: '2026-11-27T01:41:05Z' }];
      const r = await device.api(server.url, 'PUT', path, { messages });
      assert.equal(r.status, 204);
      assert.deepEqual(server.deploymentLogs(deploymentId, deviceId), messages);
    });

    it('serves POST v2 when configured to', async () => {
      const v2server = await startMenderServer({ store, v2Next: 'serve', autoAccept: true });
      try {
        const d = new FakeDevice('rsa', { mac: '02:00:00:00:05:01' });
        assert.equal((await d.authenticate(v2server.url)).status, 200, 'auto-accept');
        const id = v2server.deviceByIdentity(d.identity)!.id;
        await v2server.uploadArtifact(artifactPath, { name: 'release-2', deviceTypes: ['test-device'] });
        const dep = v2server.createDeployment({ name: 'v2', artifactName: 'release-2', devices: [id] });
        const r = await d.api(v2server.url, 'POST', NEXT_V2, { device_provides: installed, update_control_map: true });
        assert.equal(r.status, 200);
        contract.assert('deployment-instructions', JSON.parse(r.text));
        spec?.assertResponse('get', NEXT, 200, JSON.parse(r.text));
        assert.equal((JSON.parse(r.text) as { id: string }).id, dep.id);
      } finally {
        await v2server.close();
      }
    });
  });

  it('logs a management user in (Basic → raw JWT) and preauthorizes: 201, 409 with the device, 201 with force', async () => {
    const bad = await call(server.url, 'POST', LOGIN, { headers: { Authorization: basic('admin@example.com', 'wrong') } });
    assertMenderError(spec, 'post', LOGIN, bad, 401);
    const good = await call(server.url, 'POST', LOGIN, { headers: { Authorization: basic('admin@example.com', 'correcthorse') } });
    assert.equal(good.status, 200);
    assert.equal(good.headers['content-type'], 'application/jwt');
    contract.assert('device-jwt', good.text);
    spec?.assertResponse('post', LOGIN, 200, good.text);
    assert.deepEqual(server.logins.slice(-2), [
      { email: 'admin@example.com', ok: false },
      { email: 'admin@example.com', ok: true },
    ]);
    const device = new FakeDevice('ec', { mac: '02:00:00:00:06:01', serial: 'S1' });
    const preauth = (force?: boolean): Promise<Reply> =>
      call(server.url, 'POST', PREAUTH, {
        headers: { Authorization: `Bearer ${good.text}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({
          identity_data: { serial: 'S1', mac: '02:00:00:00:06:01' },
          pubkey: device.pubkey,
          ...(force === undefined ? {} : { force }),
        }),
      });
    assert.equal((await preauth()).status, 201);
    const conflict = await preauth();
    assert.equal(conflict.status, 409);
    const record = JSON.parse(conflict.text) as { id: string; auth_sets?: unknown };
    spec?.assertResponse('post', PREAUTH, 409, record);
    contract.assert('devauth-device', record);
    assert.equal(record.auth_sets, undefined, 'the device record alone, as the server reads it by identity');
    // Its auth sets and their statuses: GET …/devices/{id} (what the mTLS admission reads).
    const got = await call(server.url, 'GET', `${PREAUTH}/${record.id}`, { headers: { Authorization: `Bearer ${good.text}` } });
    assert.equal(got.status, 200);
    const full = JSON.parse(got.text) as { auth_sets: { pubkey: string; status: string }[] };
    spec?.assertResponse('get', `${PREAUTH}/{id}`, 200, full);
    contract.assert('devauth-device', full);
    assert.deepEqual(
      full.auth_sets.map((a) => a.status),
      ['preauthorized'],
    );
    assert.equal((await preauth(true)).status, 201);
    assert.deepEqual(
      server.preauthorizations.slice(-3).map((p) => [p.status, p.force]),
      [
        [201, false],
        [409, false],
        [201, true],
      ],
    );
    assert.equal(
      (await device.authenticate(server.url)).status,
      200,
      'a preauthorized device is accepted on its first auth request (identity key order does not matter)',
    );
    const noToken = await call(server.url, 'POST', PREAUTH, { headers: { 'Content-Type': 'application/json' }, body: '{}' });
    assert.equal(noToken.status, 401);
  });

  it('gives a user a deployment with its artifact ids and an artifact download link (cache prewarm), 404 for unknown ids', async () => {
    const token = (await call(server.url, 'POST', LOGIN, { headers: { Authorization: basic('admin@example.com', 'correcthorse') } })).text;
    const auth = { headers: { Authorization: `Bearer ${token}` } };
    const artifact = await server.uploadArtifact(artifactPath, { name: 'release-prewarm', deviceTypes: ['test-device'] });
    const dep = server.createDeployment({ name: 'prewarm', artifactName: 'release-prewarm', devices: ['some-device'] });
    const got = await call(server.url, 'GET', `/api/management/v1/deployments/deployments/${dep.id}`, auth);
    assert.equal(got.status, 200);
    const body = JSON.parse(got.text) as { artifacts: string[] };
    contract.assert('deployment', body);
    spec?.assertResponse('get', '/api/management/v1/deployments/deployments/{id}', 200, body);
    assert.deepEqual(body.artifacts, [artifact.id]);
    const DOWNLOAD = '/api/management/v1/deployments/artifacts/{id}/download';
    const link = await call(server.url, 'GET', DOWNLOAD.replace('{id}', artifact.id), auth);
    assert.equal(link.status, 200);
    const linkBody = JSON.parse(link.text) as { uri: string; expire: string };
    contract.assert('artifact-link', linkBody);
    spec?.assertResponse('get', DOWNLOAD, 200, linkBody);
    const bytes = await call(linkBody.uri, 'GET', '');
    assert.equal(bytes.status, 200);
    assert.equal(bytes.headers['content-length'], String(artifactBytes.length));
    assertMenderError(spec, 'get', DOWNLOAD, await call(server.url, 'GET', DOWNLOAD.replace('{id}', 'no-such-artifact'), auth), 404);
    assert.equal((await call(server.url, 'GET', DOWNLOAD.replace('{id}', artifact.id))).status, 401);
  });

  it('deviceconnect: refuses a device without a JWT; answers ProtoMsg pings; a user’s shell and file transfer reach the device', async () => {
    const device = new FakeDevice('ed25519', { mac: '02:00:00:00:07:01' });
    await device.authenticate(server.url);
    const id = server.deviceByIdentity(device.identity)!.id;
    server.acceptDevice(id);
    await device.authenticate(server.url);
    const wsUrl = server.url.replace(/^http/, 'ws') + '/api/devices/v1/deviceconnect/connect';
    const refused = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(wsUrl);
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => reject(new Error('opened without a JWT')));
      ws.on('error', () => undefined);
    });
    assert.equal(refused, 401);
    const ws = new WebSocket(wsUrl, { headers: { Authorization: `Bearer ${device.token}` } });
    try {
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      await server.deviceconnect.waitForDevice(id, 5000);
      const frames: ProtoMsg[] = [];
      const arrived: (() => void)[] = [];
      ws.on('message', (data) => {
        frames.push(decodeProtoMsg(data as Buffer)!);
        for (const wake of arrived.splice(0)) wake();
      });
      const next = async (pred: (m: ProtoMsg) => boolean): Promise<ProtoMsg> => {
        for (;;) {
          const found = frames.find(pred);
          if (found) return found;
          await new Promise<void>((r) => arrived.push(r));
        }
      };
      // A device's control ping gets a pong with its session id.
      ws.send(encodeProtoMsg({ hdr: { proto: PROTO_CONTROL, typ: 'ping', sid: 'control-1' } }));
      assert.deepEqual((await next((m) => m.hdr.typ === 'pong')).hdr, { proto: PROTO_CONTROL, typ: 'pong', sid: 'control-1' });

      // A shell, as mender-connect answers one: 'new' accepted, input echoed back as output.
      const opening = server.deviceconnect.openShell(id, 5000);
      const newShell = await next((m) => m.hdr.proto === PROTO_SHELL && m.hdr.typ === 'new');
      assert.equal(newShell.hdr.props?.user_id, 'remote-user');
      const sid = newShell.hdr.sid!;
      ws.send(encodeProtoMsg({ hdr: { proto: PROTO_SHELL, typ: 'new', sid, props: { status: 1 } }, body: Buffer.from('Shell started') }));
      const shell = await opening;
      ws.on('message', (data) => {
        const m = decodeProtoMsg(data as Buffer)!;
        if (m.hdr.typ === 'shell')
          ws.send(
            encodeProtoMsg({
              hdr: { proto: PROTO_SHELL, typ: 'shell', sid, props: { status: 1 } },
              body: Buffer.from(`out:${Buffer.from(m.body!).toString()}`),
            }),
          );
      });
      shell.write('uname\n');
      assert.equal(await shell.waitFor(/out:uname/, 5000), 'out:uname');

      // File transfer: offsets go to the device as int64 (mender-connect requires it).
      const upload = server.deviceconnect.uploadFile(id, '/tmp/x.bin', Buffer.alloc(40_000, 7), 5000);
      const put = await next((m) => m.hdr.typ === 'put_file');
      assert.equal(decodeBody<{ path: string; size: number }>(put.body)?.path, '/tmp/x.bin');
      ws.send(encodeProtoMsg({ hdr: { proto: PROTO_FILE_TRANSFER, typ: 'ack', sid: put.hdr.sid, props: { offset: 0 } } }));
      await next((m) => m.hdr.typ === 'file_chunk' && m.hdr.props?.offset === 40_000);
      const offsets = frames.filter((m) => m.hdr.typ === 'file_chunk').map((m) => m.hdr.props?.offset);
      assert.deepEqual(offsets, [...Array.from({ length: 10 }, (_, i) => i * 4096), 40_000], 'chunks of 4 KiB, then the empty one');
      ws.send(encodeProtoMsg({ hdr: { proto: PROTO_FILE_TRANSFER, typ: 'ack', sid: put.hdr.sid, props: { offset: 40_000 } } }));
      await upload;
      shell.close();
      assert.equal((await next((m) => m.hdr.typ === 'stop')).hdr.sid, sid);
    } finally {
      ws.terminate();
    }
    assert.deepEqual(
      server.calls.filter((c) => c.path.endsWith('/deviceconnect/connect')).map((c) => c.status),
      [401, 101],
    );
  });
});
