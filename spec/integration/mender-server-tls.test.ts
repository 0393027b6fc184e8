import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { readFileSync, rmSync } from 'node:fs';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import { startMenderServer, type MenderServer } from '../../fixtures/mender-server';
import { makeTlsMaterial, type TlsMaterial } from '../support/tls-material';

describe('mender server emulator over TLS', () => {
  let tls: TlsMaterial;
  let store: S3Store;
  let server: MenderServer;

  before(async () => {
    tls = makeTlsMaterial();
    store = await startS3Store();
    server = await startMenderServer({ store, tls: tls.server });
  });
  after(async () => {
    await server?.close();
    await store?.close();
    if (tls) rmSync(tls.dir, { recursive: true, force: true });
  });

  it('serves https with the given certificate and the same API (login answers a raw JWT)', async () => {
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const reply = await new Promise<{ status: number; type?: string; body: string }>((resolve, reject) => {
      const req = https.request(
        server.url + '/api/management/v1/useradm/auth/login',
        {
          method: 'POST',
          ca: readFileSync(tls.ca.cert),
          agent: false,
          headers: { Authorization: 'Basic ' + Buffer.from('admin@example.com:correcthorse').toString('base64') },
        },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }));
        },
      );
      req.on('error', reject);
      req.end();
    });
    assert.equal(reply.status, 200);
    assert.equal(reply.type, 'application/jwt');
    assert.equal(reply.body.split('.').length, 3);
  });
});
