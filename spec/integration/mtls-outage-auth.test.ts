import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { captureLog } from '../support/capture-log';
import { makeDeviceCert } from '../support/device-certs';
import { postAuth, signedAuthBody, tlsAgent } from '../support/mtls-device';
import { type MtlsBed, startMtlsBed } from '../support/mtls-bed';

// Auth during an outage (docs/journal.md) on the mTLS listener: with the report journal on, a device upstream admitted gets its
// last token back while upstream is unreachable, whether its preauthorization is cached (the
// forward fails) or not (the management call fails); a device upstream never admitted gets 502.

const USER = { email: 'gateway@example.com', password: 'gw-outage-Pa55' };
let bed: MtlsBed;
const log = captureLog('debug');

before(async () => {
  bed = await startMtlsBed('mtls-outage-auth-', { users: [USER] });
});

after(() => bed.close());

async function mtlsGateway(enableCache: boolean): Promise<string> {
  const features = {
    ReportJournal: { Enabled: true, Path: join(bed.dir, `journal-${enableCache}`) },
    mTLS: { Enabled: true, EnableCache: enableCache },
  };
  return (await bed.startGateway({ Features: features }, log.log)).https;
}

test('mTLS: an admitted device gets its last token back while upstream is down (preauthorization cached or not); others get 502', async () => {
  const cached = await mtlsGateway(true);
  const uncached = await mtlsGateway(false);
  const device = (name: string) => {
    const cert = makeDeviceCert(bed.dir, name, bed.tls.ca, { keyType: 'ec' });
    return {
      agent: tlsAgent({ ca: bed.tls.ca.cert, cert: cert.cert, key: cert.key }),
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

  await bed.server.stop();
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
