import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createLinkSigner } from '../../lib/artifacts/signed-link';
import { startGateway, type RunningGateway } from '../../lib/gateway';
import { captureLog } from '../support/capture-log';
import { testConfig } from '../support/gateway-config';
import { closeServer, listenOnFreePort } from '../support/listen';
import { download } from './cache-harness';

// A cache fill waits for the origin's answer as long as UpstreamServer.Timeout says, not a fixed
// 30 s: an origin that never answers the first request is given up on after 1 s here, and the
// fill's retry gets the artifact for the waiting device.

const BODY = randomBytes(1000);
const secret = randomBytes(32);
let dir: string;
let origin: http.Server;
let originPort: number;
const asked: number[] = [];
let gateway: RunningGateway;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fill-timeout-'));
  origin = http.createServer((req, res) => {
    asked.push(Date.now());
    if (asked.length === 1) return; // the first request is never answered
    res.writeHead(200, { 'Content-Length': BODY.length, ETag: '"e1"' }).end(req.method === 'HEAD' ? undefined : BODY);
  });
  originPort = await listenOnFreePort(origin);
  gateway = await startGateway(
    testConfig({
      UpstreamServer: { URL: 'http://127.0.0.1:9', Timeout: '1s' },
      Features: {
        ArtifactsProxy: {
          Enabled: true,
          GatewayURL: 'http://gateway.example.com',
          DomainWhitelist: ['127.0.0.1'],
          ArtifactsCache: { Enabled: true, Path: dir, SignatureSecret: secret.toString('base64') },
        },
      },
    }),
    captureLog('error').log,
  );
});

after(async () => {
  await gateway.close(0);
  origin.closeAllConnections();
  await closeServer(origin);
  rmSync(dir, { recursive: true, force: true });
});

test('a cache fill gives up on a silent origin after UpstreamServer.Timeout and retries', async () => {
  const signer = createLinkSigner({ secret, gatewayUrl: 'http://gateway.example.com' });
  const link = new URL(signer.mint(`http://127.0.0.1:${originPort}/bucket/a.mender?X-Amz-Signature=x`, new Date(Date.now() + 600_000)));
  const started = Date.now();
  const got = await download(`http://127.0.0.1:${gateway.addresses.http!.port}${link.pathname}${link.search}`, { keep: true });
  assert.equal(got.status, 200);
  assert.ok(got.body!.equals(BODY), 'every byte');
  assert.ok(asked.length >= 2, `origin asked ${asked.length} times`);
  const waited = asked[1]! - asked[0]!;
  // 1 s of timeout and the first backoff (250 ms); the fixed 30 s would be far past this.
  assert.ok(waited >= 900 && waited < 5_000, `the retry came ${waited} ms after the first request`);
  assert.ok(Date.now() - started < 10_000);
});
