import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startMenderServer, type MenderServer } from '../../fixtures/mender-server';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import { startGateway, type RunningGateway } from '../../lib/gateway';
import { captureLog } from '../support/capture-log';
import { testConfig } from '../support/gateway-config';
import { call } from './journal-harness';

// With the report journal on, an auth request made while upstream is unreachable gets
// the token upstream last issued that identity and key (client 5.1 re-authenticates before
// ArtifactCommit). Only a request signed by that key gets it; an unknown device, a bad
// signature, or a gateway without the journal get the 502 as before; once upstream is back,
// tokens come from upstream again.

const AUTH = '/api/devices/v1/authentication/auth_requests';
let dir: string;
let store: S3Store;
let server: MenderServer;
let gateway: RunningGateway | undefined;
let off: RunningGateway | undefined;
const log = captureLog('debug');
const url = (g: RunningGateway | undefined): string => `http://127.0.0.1:${g!.addresses.http!.port}`;

function authRequest(mac: string, signWith = generateKeyPairSync('ed25519').privateKey) {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const pubkey = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  // Client 5.1's body: no trailing newline, tier, no tenant_token when empty.
  const body = JSON.stringify({ id_data: JSON.stringify({ mac }), pubkey, tier: 'standard' });
  return {
    body,
    good: sign(null, Buffer.from(body), privateKey).toString('base64'),
    bad: sign(null, Buffer.from(body), signWith).toString('base64'),
  };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'journal-outage-auth-'));
  store = await startS3Store({});
  server = await startMenderServer({ store, autoAccept: true });
  gateway = await startGateway(
    testConfig({
      UpstreamServer: { URL: server.url, Timeout: '2s' },
      Features: { ReportJournal: { Enabled: true, Path: join(dir, 'journal') } },
    }),
    log.log,
  );
  off = await startGateway(testConfig({ UpstreamServer: { URL: server.url, Timeout: '2s' } }), captureLog('error').log);
});

after(async () => {
  await gateway?.close(0);
  await off?.close(0);
  await server.start();
  await server.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

test('upstream down: a device gets back the token upstream issued it, only with a good signature; upstream back: fresh tokens', async () => {
  const known = authRequest('02:00:00:aa:00:01');
  const unknown = authRequest('02:00:00:aa:00:02');
  const post = (g: RunningGateway | undefined, r: { body: string }, signature: string) =>
    call(url(g), 'POST', AUTH, undefined, r.body, { 'x-men-signature': signature });

  const issued = await post(gateway, known, known.good);
  assert.equal(issued.status, 200);
  assert.match(issued.body, /^eyJ/);
  const viaOff = await post(off, known, known.good);
  assert.equal(viaOff.status, 200);

  await server.stop();
  const again = await post(gateway, known, known.good);
  assert.equal(again.status, 200, again.body);
  assert.equal(again.body, issued.body, 'the token upstream issued, byte for byte');
  assert.equal(again.headers['content-type'], issued.headers['content-type']);
  assert.equal((await post(gateway, known, known.bad)).status, 502, 'a bad signature gets no token');
  assert.equal((await post(gateway, unknown, unknown.good)).status, 502, 'a device upstream never answered gets no token');
  assert.equal((await post(off, known, known.good)).status, 502, 'without the journal: 502 as before');
  assert.match(log.text(), /msg="upstream unreachable: device given the token upstream last issued it"/);
  assert.doesNotMatch(log.text(), /eyJ[\w-]{10,}\.[\w-]{10,}/, 'a JWT in the gateway log');

  await server.start();
  const authCalls = server.calls.filter((c) => c.path === AUTH).length;
  const fresh = await post(gateway, known, known.good);
  assert.equal(fresh.status, 200);
  assert.equal(server.calls.filter((c) => c.path === AUTH).length, authCalls + 1, 'asked upstream again once it is back');
});
