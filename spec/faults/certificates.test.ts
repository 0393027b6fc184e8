import assert from 'node:assert/strict';
import { promises as fsp, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startMenderServer, type MenderServer } from '../../fixtures/mender-server';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import { tempDir } from '../integration/cache-harness';
import { makeDeviceCert, makeRogueCa, makeSelfSignedDevice, type DeviceCert } from '../support/device-certs';
import type { GatewayProcess } from '../support/gateway-process';
import { postAuth, signedAuthBody, tlsAgent } from '../support/mtls-device';
import { makeLeaf, makeTlsMaterial, type TlsMaterial } from '../support/tls-material';
import { alive, assertNoSecrets, runGateway } from './fault-harness';
import { recordFigures } from './figures';

// Who gets in, against the real gateway process with mTLS on: every kind of wrong client
// certificate is refused and nothing reaches the Mender server on its behalf; a good one is
// admitted (so the refusals are not a broken setup). The management password stays out of the log.

const PASSWORD = 'faults-Mgmt-Pa55word!';
let dir: string;
let tls: TlsMaterial;
let store: S3Store;
let server: MenderServer;
let gw: GatewayProcess;
let certs: Record<string, DeviceCert | undefined>;

before(async () => {
  dir = await tempDir('faults-certs-');
  tls = makeTlsMaterial(dir);
  const rogue = makeRogueCa(dir);
  const wrongUsage = makeLeaf(dir, 'server-usage', tls.ca, { extendedKeyUsage: 'serverAuth', days: 30 });
  certs = {
    good: makeDeviceCert(dir, 'good', tls.ca),
    'rogue CA': makeDeviceCert(dir, 'rogue', rogue),
    'self-signed': makeSelfSignedDevice(dir, 'self-signed'),
    expired: makeDeviceCert(dir, 'expired', tls.ca, { fromDays: -30, toDays: -1 }),
    'not yet valid': makeDeviceCert(dir, 'not-yet', tls.ca, { fromDays: 2, toDays: 30 }),
    'wrong key usage (serverAuth only)': { ...wrongUsage, chain: wrongUsage.cert, serial: '' },
    blocklisted: makeDeviceCert(dir, 'listed', tls.ca, { serial: '0FA17ED1' }),
    none: undefined,
  };
  const blocklist = path.join(dir, 'blocklist');
  writeFileSync(blocklist, '0fa17ed1\n');
  store = await startS3Store();
  server = await startMenderServer({ store, users: [{ email: 'gw@example.com', password: PASSWORD }] });
  gw = await runGateway({
    dir,
    name: 'certificates',
    waitFor: ['https'],
    config: {
      HTTPS: { Enabled: true, Listen: '127.0.0.1:0', ServerCertificate: tls.server.cert, ServerKey: tls.server.key },
      UpstreamServer: { URL: server.url, Timeout: '5s' },
      ShutdownTimeout: '1s',
      Features: {
        mTLS: {
          Enabled: true,
          CACertificate: tls.ca.cert,
          BlacklistPath: blocklist,
          MenderUsername: 'gw@example.com',
          MenderPassword: PASSWORD,
        },
      },
    },
  });
});
after(async () => {
  await gw?.stop();
  await server?.close();
  await store?.close();
  await fsp.rm(dir, { recursive: true, force: true });
});

let mac = 0;
function auth(cert: DeviceCert | undefined) {
  const agent = tlsAgent({ ca: tls.ca.cert, cert: cert?.chain, key: cert?.key });
  const body = signedAuthBody(
    { mac: `02:00:00:09:01:${(mac++).toString(16).padStart(2, '0')}` },
    cert?.key ?? (certs.good as DeviceCert).key,
  );
  return postAuth(gw.url('https'), agent, body).finally(() => agent.destroy());
}

const deviceCalls = () => server.calls.filter((c) => c.path.startsWith('/api/devices/')).length;
let refused = 0;

describe('client certificates', () => {
  it('a certificate from the CA is admitted (control)', async () => {
    const r = await auth(certs.good);
    assert.equal(r.status, 200, r.body);
  });

  for (const name of ['rogue CA', 'self-signed', 'expired', 'not yet valid', 'wrong key usage (serverAuth only)', 'blocklisted', 'none']) {
    it(`${name}: refused, nothing reaches the Mender server`, async () => {
      const before = deviceCalls();
      const logins = server.logins.length;
      for (let i = 0; i < 3; i++) {
        const outcome = await auth(certs[name]).then(
          (r) => `HTTP ${r.status}`,
          (err: NodeJS.ErrnoException) => `refused (${err.code ?? err.message})`,
        );
        assert.match(outcome, /^refused|^HTTP 4\d\d$/, outcome);
      }
      assert.equal(deviceCalls(), before, 'no device call upstream');
      assert.equal(server.logins.length, logins, 'no management login on its behalf');
      assert.ok(alive(gw));
      refused += 3;
    });
  }

  it('the log names each refusal and holds no password', () => {
    const log = gw.output();
    assert.match(log, /CERT_HAS_EXPIRED/);
    assert.match(log, /CERT_NOT_YET_VALID/);
    assert.match(log, /INVALID_PURPOSE|unsupported certificate purpose|purpose/i);
    assert.match(log, /blocklist|blacklist/i);
    assertNoSecrets(log, [PASSWORD]);
    recordFigures('client certificates refused', {
      trials: 7,
      faults: refused,
      inputs: refused + 1,
      bytesLost: 0,
      note: 'rogue CA, self-signed, expired, not yet valid, wrong key usage, blocklisted, none; 0 admitted',
    });
  });
});
