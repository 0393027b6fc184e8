import assert from 'node:assert/strict';
import http from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeDeviceCert } from '../support/device-certs';
import { type MtlsBed, startMtlsBed } from '../support/mtls-bed';
import { postAuth, signedAuthBody, tlsAgent } from '../support/mtls-device';

// The token upstream last issued a device is given back to it during an outage (journal.md).
// Only the holder of the device's key may take it, or make the gateway forget it: an auth
// request naming the device (its identity and public key are no secret) without its signature,
// refused by upstream or by the gateway, must leave the kept token where it is.

const USER = { email: 'gateway@example.com', password: 'kept-Pa55' };
let bed: MtlsBed;

before(async () => {
  bed = await startMtlsBed('kept-token-trust-', { users: [USER], autoAccept: true });
});

after(() => bed.close());

async function gateway(mtls: boolean): Promise<{ http: string; https: string }> {
  const features = {
    ReportJournal: { Enabled: true, Path: join(bed.dir, `journal-${mtls}`) },
    mTLS: { Enabled: mtls, AllowPlainHTTP: true, EnableCache: true },
  };
  const g = await bed.startGateway({ HTTP: { Enabled: true }, Features: features });
  return { http: g.http!, https: g.https };
}

describe('kept tokens', () => {
  for (const mtls of [false, true]) {
    it(`attack: ${mtls ? 'with mTLS, ' : ''}unsigned auth requests naming a device do not take its kept token away`, async () => {
      const urls = await gateway(mtls);
      const cert = makeDeviceCert(bed.dir, `victim-${mtls}`, bed.tls.ca, { keyType: 'ec' });
      const agent = tlsAgent({ ca: bed.tls.ca.cert, cert: cert.cert, key: cert.key });
      const victim = signedAuthBody({ mac: `02:00:00:cc:00:0${Number(mtls)}` }, cert.key);
      const issued = await postAuth(urls.https, agent, victim);
      assert.equal(issued.status, 200, issued.body);

      // The victim's identity and key, without its signature: over plain HTTP (no certificate),
      // and over HTTPS with a signature that is not the key's.
      const plain = new http.Agent();
      const unsigned = await postAuth(urls.http, plain, { raw: victim.raw });
      const forged = await postAuth(urls.https, agent, { raw: victim.raw, signature: Buffer.from('not a signature').toString('base64') });
      assert.ok(unsigned.status >= 400 && forged.status >= 400, `refused: ${unsigned.status}, ${forged.status}`);

      await bed.server.stop();
      try {
        const again = await postAuth(urls.https, agent, victim);
        assert.deepEqual([again.status, again.body], [200, issued.body], 'the kept token, still there');
      } finally {
        await bed.server.start();
        plain.destroy();
        agent.destroy();
      }
    });
  }
});
