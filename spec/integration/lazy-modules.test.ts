import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startGateway } from '../../lib/gateway';
import { captureLog } from '../support/capture-log';
import { testConfig } from '../support/gateway-config';

// An idle gateway pays only for the features it uses. Each module below costs RSS
// (undici ~6 MB with its WASM parser, prom-client ~2 MB, proper-lockfile ~5 MB); they must load
// at first use, and the modules of unconfigured features never (the auth-request parser in
// lib/mtls/ is used by the journal's wrapper of the auth route, so it loads with the journal).
// (Each test file runs in a process of its own, so require.cache is this gateway's.)

const loaded = (fragment: string): boolean => Object.keys(require.cache).some((file) => file.includes(fragment));

test('features load their modules when configured or first used, not at start', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lazy-'));
  const upstream = http.createServer((_req, res) => res.writeHead(204).end());
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const port = (upstream.address() as { port: number }).port;
  const config = testConfig({
    UpstreamServer: { URL: `http://127.0.0.1:${port}` },
    Metrics: { Enabled: true, Listen: '127.0.0.1:0' },
    Features: {
      ArtifactsProxy: {
        Enabled: true,
        GatewayURL: 'http://gateway.invalid',
        DomainWhitelist: ['127.0.0.1'],
        ArtifactsCache: { Enabled: true, Path: join(dir, 'cache'), SignatureSecret: 'c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=' },
      },
    },
  });
  const { log } = captureLog();
  const gateway = await startGateway(config, log);
  try {
    for (const lazy of [
      'node_modules/undici/',
      'node_modules/prom-client/',
      'node_modules/proper-lockfile/',
      'node_modules/https-proxy-agent/',
      'node_modules/pkijs/',
      'lib/mtls/mtls-admission',
      'lib/mtls/preauthorize',
      'lib/mtls/management-session',
      's3-shared-cache',
    ]) {
      assert.equal(loaded(lazy), false, `${lazy} loaded at start`);
    }
    // The admin listener is configured, so its module is there; prom-client waits for a scrape.
    assert.equal(loaded('lib/admin/admin-server'), true);

    // The first device request brings undici (the pass-through's pool).
    const status = await new Promise<number>((resolve, reject) => {
      http
        .get(`http://127.0.0.1:${gateway.addresses.http!.port}/api/devices/v1/inventory/device/attributes`, (res) => {
          res.resume();
          resolve(res.statusCode!);
        })
        .on('error', reject);
    });
    assert.equal(status, 204);
    assert.equal(loaded('node_modules/undici/'), true);

    // The first scrape brings prom-client, with the process metrics.
    const admin = gateway.admin!;
    for (let i = 0; i < 100 && !admin.address(); i++) await new Promise((r) => setTimeout(r, 20));
    const metrics = await new Promise<string>((resolve, reject) => {
      http
        .get(`http://127.0.0.1:${admin.address()!.port}/metrics`, (res) => {
          let body = '';
          res
            .setEncoding('utf8')
            .on('data', (c: string) => (body += c))
            .on('end', () => resolve(body));
        })
        .on('error', reject);
    });
    assert.match(metrics, /process_cpu_user_seconds_total/);
    assert.equal(loaded('node_modules/prom-client/'), true);
  } finally {
    await gateway.close();
    upstream.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
