import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import { test } from 'node:test';
import type { AuthRequest } from '../../lib/mtls/auth-request';
import { createPreauthorizer } from '../../lib/mtls/preauthorize';
import { PreauthorizationCache } from '../../lib/mtls/preauthorization-cache';
import { createLogger } from '../../lib/observe/log';
import { createUpstream } from '../../lib/proxy/upstream';
import { testConfig } from '../support/gateway-config';
import { closeServer, listenOnFreePort } from '../support/listen';

// The preauthorizer keeps an attempt per identity and key while it is upstream, and a queue per
// identity while any of its keys is being preauthorized: both hold only what is under way, so
// thousands of devices (accepted, failing, two keys at once, retrying) leave nothing behind.

const DEVICES = 2000;

test('preauthorizations under way and identity queues empty once every attempt has settled, whatever its outcome', async () => {
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      const n = Number(/"sn":"(\d+)"/.exec(body)?.[1]);
      // One device in ten: the management API fails (the attempt rejects).
      res.writeHead(n % 10 === 0 ? 500 : 201, { 'Content-Type': 'application/json' });
      res.end(n % 10 === 0 ? '{"error":"boom"}' : '');
    });
  });
  const port = await listenOnFreePort(server);
  const upstream = createUpstream(testConfig({ UpstreamServer: { URL: `http://127.0.0.1:${port}` } }).UpstreamServer, {});
  const preauthorizer = createPreauthorizer({
    upstream,
    session: { token: async () => 'management-token', invalidate: () => undefined, logins: 1 },
    cache: new PreauthorizationCache(3600_000),
    log: createLogger({ level: 'fatal', sink: { write: () => true } }),
  });
  try {
    const keys = [0, 1].map(() => generateKeyPairSync('ed25519').publicKey);
    const request = (n: number, k: number): AuthRequest => ({
      identity: { sn: String(n) },
      key: keys[k]!,
      pubkeyPem: keys[k]!.export({ type: 'spki', format: 'pem' }).toString(),
    });
    const device = { clientAddress: '127.0.0.1', requestId: 'r' };
    const attempts: Promise<void>[] = [];
    for (let n = 0; n < DEVICES; n++) {
      attempts.push(preauthorizer.ensure(request(n, 0), device), preauthorizer.ensure(request(n, 0), device)); // a retry joins
      if (n % 4 === 0) attempts.push(preauthorizer.ensure(request(n, 1), device)); // a second key queues behind
    }
    assert.deepEqual(preauthorizer.pending, { inflight: DEVICES + DEVICES / 4, queues: DEVICES }, 'all under way at once');
    const outcomes = await Promise.allSettled(attempts);
    assert.equal(outcomes.filter((o) => o.status === 'rejected').length, (DEVICES / 10) * 2 + DEVICES / 20);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(preauthorizer.pending, { inflight: 0, queues: 0 }, 'nothing left once settled');
  } finally {
    upstream.close();
    await closeServer(server);
  }
});
