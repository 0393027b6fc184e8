import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startMenderServer, type MenderServer } from '../../fixtures/mender-server';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import { startGateway, type RunningGateway } from '../../lib/gateway';
import { captureLog } from '../support/capture-log';
import { makeDeviceCert } from '../support/device-certs';
import { testConfig } from '../support/gateway-config';
import { postAuth, signedAuthBody, tlsAgent } from '../support/mtls-device';
import { makeTlsMaterial, type TlsMaterial } from '../support/tls-material';

// Auth during an outage (docs/journal.md) on the mTLS listener: with the report journal on, a device upstream admitted gets its
// last token back while upstream is unreachable, whether its preauthorization is cached (the
// forward fails) or not (the management call fails); a device upstream never admitted gets 502.

const USER = { email: 'gateway@example.com', password: 'gw-outage-Pa55' };
let dir: string;
let tls: TlsMaterial;
let store: S3Store;
let server: MenderServer;
const gateways: RunningGateway[] = [];
const log = captureLog('debug');

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mtls-outage-auth-'));
  tls = makeTlsMaterial(dir);
  store = await startS3Store();
  server = await startMenderServer({ store, users: [USER] });
});

after(async () => {
  for (const g of gateways) await g.close(0);
  await server.start();
  await server.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function mtlsGateway(enableCache: boolean): Promise<string> {
  const g = await startGateway(
    testConfig({
      HTTP: { Enabled: false },
      HTTPS: { Enabled: true, ServerCertificate: tls.server.cert, ServerKey: tls.server.key },
      UpstreamServer: { URL: server.url, Timeout: '2s' },
      Features: {
        ReportJournal: { Enabled: true, Path: join(dir, `journal-${enableCache}`) },
        mTLS: {
          Enabled: true,
          CACertificate: tls.ca.cert,
          MenderUsername: USER.email,
          MenderPassword: USER.password,
          EnableCache: enableCache,
        },
      },
    }),
    log.log,
  );
  gateways.push(g);
  return `https://127.0.0.1:${g.addresses.https!.port}`;
}

test('mTLS: an admitted device gets its last token back while upstream is down (preauthorization cached or not); others get 502', async () => {
  const cached = await mtlsGateway(true);
  const uncached = await mtlsGateway(false);
  const device = (name: string) => {
    const cert = makeDeviceCert(dir, name, tls.ca, { keyType: 'ec' });
    return {
      agent: tlsAgent({ ca: tls.ca.cert, cert: cert.cert, key: cert.key }),
      body: signedAuthBody({ mac: `02:00:00:bb:00:${name.length}` }, cert.key),
    };
  };
  const a = device('dev-a');
  const b = device('dev-bb');
  const never = device('dev-ccc');
  const issuedA = await postAuth(cached, a.agent, a.body);
  const issuedB = await postAuth(uncached, b.agent, b.body);
  assert.equal(issuedA.status, 200, issuedA.body);
  assert.equal(issuedB.status, 200, issuedB.body);

  await server.stop();
  const againA = await postAuth(cached, a.agent, a.body);
  assert.equal(againA.status, 200, againA.body);
  assert.equal(againA.body, issuedA.body);
  const againB = await postAuth(uncached, b.agent, b.body);
  assert.equal(againB.status, 200, againB.body);
  assert.equal(againB.body, issuedB.body);
  assert.equal((await postAuth(cached, never.agent, never.body)).status, 502);
  assert.equal((log.text().match(/msg="upstream unreachable: device given the token upstream last issued it"/g) ?? []).length, 2);
  assert.doesNotMatch(log.text(), /eyJ[\w-]{10,}\.[\w-]{10,}/, 'a JWT in the gateway log');
});
