import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import type { BrowserContext } from 'playwright-core';
import { startScriptedDevice, type ScriptedDevice } from '../../fixtures/demo/scripted-device';
import { startMenderServer, type MenderServer } from '../../fixtures/mender-server';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import { startGateway, type RunningGateway } from '../../lib/gateway';
import { captureLog } from '../support/capture-log';
import { testConfig } from '../support/gateway-config';
import { REPO_ROOT } from '../support/gateway-process';
import { launchChromium, pageProblems } from '../support/headless-chromium';
import { closeServer, listenOnFreePort } from '../support/listen';

// The status page (docs/operations.md) in a real browser: Debian's headless chromium driven by
// playwright-core opens the admin listener of a gateway through which a device (the demo's
// scripted one, same calls as the real client) has just downloaded an artifact. The page must
// show that device, its deployment status and the artifact, with no console error. The
// screenshot is kept in coverage/status-page.png.

const ARTIFACT = 'status-page-release-2';
// The history samples every 250 ms here instead of every minute, so a few seconds of traffic fill
// its charts; the picture in docs/operations.md comes from a longer run
// (STATUS_PAGE_HISTORY_MS=180000 STATUS_PAGE_HISTORY_INTERVAL_MS=1000).
const HISTORY_INTERVAL_MS = Number(process.env.STATUS_PAGE_HISTORY_INTERVAL_MS ?? 250);
const HISTORY_TRAFFIC_MS = Number(process.env.STATUS_PAGE_HISTORY_MS ?? 4000);

let dir: string;
let store: S3Store;
let server: MenderServer;
let gateway: RunningGateway;
let device: ScriptedDevice | undefined;
let browser: BrowserContext | undefined;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gw-status-page-'));
  store = await startS3Store({});
  server = await startMenderServer({ store, autoAccept: true });
  const file = join(dir, 'artifact.mender');
  writeFileSync(file, randomBytes(256 * 1024));
  await server.uploadArtifact(file, { name: ARTIFACT, deviceTypes: ['test-device'] });
  // GatewayURL must name the listener's port before the gateway starts: take a free one.
  const probe = net.createServer();
  const port = await listenOnFreePort(probe);
  await closeServer(probe);
  gateway = await startGateway(
    testConfig({
      HTTP: { Enabled: true, Listen: `127.0.0.1:${port}` },
      UpstreamServer: { URL: server.url },
      Metrics: { Enabled: true, Listen: '127.0.0.1:0' },
      Features: {
        ArtifactsProxy: {
          Enabled: true,
          GatewayURL: `http://127.0.0.1:${port}`,
          DomainWhitelist: [store.host],
          ArtifactsCache: { Enabled: true, Path: join(dir, 'cache') },
        },
      },
    }),
    captureLog('warn').log,
    { historyIntervalMs: HISTORY_INTERVAL_MS },
  );
  await gateway.admin!.ready;
});

after(async () => {
  await browser?.close();
  device?.stop();
  await gateway?.close(0);
  await server?.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

it('shows the device, its deployment status and the bytes served, with no console error', { timeout: 60_000 }, async () => {
  device = startScriptedDevice({ serverUrl: `http://127.0.0.1:${gateway.addresses.http!.port}`, mac: '02:00:00:00:07:01', pollMs: 200 });
  const deviceId = await until('the device to authenticate', () => server.deviceByIdentity(device!.identity)?.id);
  const deployment = server.createDeployment({ name: 'status page', artifactName: ARTIFACT, devices: [deviceId] });
  await until('the deployment to succeed', () => (server.statuses(deployment.id, deviceId).includes('success') ? true : undefined));
  assert.ok(device.bytesDownloaded >= 256 * 1024);

  // A fresh profile (playwright passes it as --user-data-dir), removed with dir.
  browser = await launchChromium(dir, { viewport: { width: 1200, height: 900 } });
  const page = await browser.newPage();
  const problems = pageProblems(page);

  const admin = gateway.admin!.address()!;
  const response = await page.goto(`http://127.0.0.1:${admin.port}/`, { waitUntil: 'load' });
  assert.equal(response?.status(), 200);
  assert.equal(await page.title(), 'Mender Gateway status');

  const deviceRow = page.locator('#devices tbody tr', { hasText: deviceId });
  await deviceRow.waitFor({ timeout: 10_000 });
  assert.match(await deviceRow.innerText(), /127\.0\.0\.1/);
  assert.match(await deviceRow.innerText(), /success/);
  // The artifact the device downloaded is a cache entry, keyed by its storage host and path.
  const cacheRow = page.locator('#cache tbody tr', { hasText: store.host });
  await cacheRow.waitFor({ timeout: 10_000 });
  assert.match(await cacheRow.innerText(), /256(\.0)? KiB/);
  assert.notEqual(await page.locator('#bytes-fetched').innerText(), '0 B');
  assert.equal(await page.locator('#upstream-health').innerText(), 'healthy');
  assert.notEqual(await page.locator('#bytes-served').innerText(), '0 B');

  mkdirSync(join(REPO_ROOT, 'coverage'), { recursive: true });
  await page.screenshot({ path: join(REPO_ROOT, 'coverage', 'status-page.png'), fullPage: true });
  assert.deepEqual(problems, []);

  // The same download in the cache's metrics: one miss, one fill, the artifact fetched once.
  const metrics = await (await fetch(`http://127.0.0.1:${admin.port}/metrics`)).text();
  const value = (series: string) =>
    Number(
      metrics
        .split('\n')
        .find((l) => l.startsWith(series + ' '))
        ?.split(' ')[1],
    );
  assert.ok(value('mender_gateway_cache_misses_total') >= 1);
  assert.equal(value('mender_gateway_cache_fills_total{result="done"}'), 1);
  assert.equal(value('mender_gateway_artifact_bytes_fetched_total'), 256 * 1024);
  assert.equal(value('mender_gateway_cache_entries'), 1);
  assert.equal(value('mender_gateway_cache_size_bytes'), 256 * 1024);
});

it('draws the history: five charts with samples of devices, requests, bytes, journal and memory', {
  timeout: 60_000 + HISTORY_TRAFFIC_MS,
}, async () => {
  assert.ok(browser, 'the first test opened the browser');
  // A second device downloads the same artifact: served from the cache, so the bytes served to
  // devices pass the bytes fetched from the uplink.
  const second = startScriptedDevice({
    serverUrl: `http://127.0.0.1:${gateway.addresses.http!.port}`,
    mac: '02:00:00:00:07:02',
    pollMs: 300,
  });
  try {
    const secondId = await until('the second device to authenticate', () => server.deviceByIdentity(second.identity)?.id);
    await new Promise((r) => setTimeout(r, HISTORY_TRAFFIC_MS / 2));
    const deployment = server.createDeployment({ name: 'status page, second', artifactName: ARTIFACT, devices: [secondId] });
    await until('the second deployment to succeed', () =>
      server.statuses(deployment.id, secondId).includes('success') ? true : undefined,
    );
    await new Promise((r) => setTimeout(r, HISTORY_TRAFFIC_MS / 2));
  } finally {
    second.stop();
  }

  const page = await browser.newPage();
  const problems = pageProblems(page);
  const admin = gateway.admin!.address()!;
  await page.goto(`http://127.0.0.1:${admin.port}/`, { waitUntil: 'load' });

  const charts = ['history-devices', 'history-requests', 'history-bytes', 'history-journal', 'history-memory'];
  for (const id of charts) {
    // uPlot draws each chart on a canvas inside the figure; data-samples is the series' length.
    await page.locator(`#${id} canvas`).waitFor({ timeout: 10_000 });
    const samples = Number(await page.locator(`#${id}`).getAttribute('data-samples'));
    assert.ok(samples >= 8, `${id}: ${samples} samples`);
  }
  assert.equal(await page.locator('#history-section canvas').count(), charts.length);
  assert.equal(await page.locator('#history-empty').isHidden(), true);

  // What the charts drew, from the same JSON: the two devices, their requests, the artifact fetched
  // once and served twice, the process' memory.
  const history = (await (await fetch(`http://127.0.0.1:${admin.port}/api/status/history`)).json()) as {
    interval_seconds: number;
    capacity: number;
    time: number[];
    series: Record<string, (number | null)[]>;
  };
  assert.equal(history.interval_seconds, HISTORY_INTERVAL_MS / 1000);
  assert.equal(history.capacity, 1440);
  const sum = (name: string) => history.series[name]!.reduce<number>((a, v) => a + (v ?? 0), 0);
  const max = (name: string) => Math.max(...history.series[name]!.map((v) => v ?? 0));
  for (const name of Object.keys(history.series)) assert.equal(history.series[name]!.length, history.time.length, name);
  assert.equal(max('devices_active'), 2);
  assert.ok(sum('requests') > 10, `requests ${sum('requests')}`);
  assert.ok(sum('bytes_served_to_devices') >= 256 * 1024, `served ${sum('bytes_served_to_devices')}`);
  assert.ok(sum('bytes_served_to_devices') > sum('bytes_fetched_upstream'));
  assert.ok(max('rss_bytes') > 10 * 1024 * 1024 && max('heap_used_bytes') > 1024 * 1024);
  assert.deepEqual(
    history.series.journal_queued!.filter((v) => v !== 0),
    [],
  );

  mkdirSync(join(REPO_ROOT, 'coverage'), { recursive: true });
  await page.screenshot({ path: join(REPO_ROOT, 'coverage', 'status-page-history.png'), fullPage: true });
  assert.deepEqual(problems, []);
  await page.close();
});

it("a request the gateway refuses itself (a bad target) says nothing of upstream's health", async () => {
  const get = (port: number, path: string): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
    });
  const admin = gateway.admin!.address()!.port;
  const upstreamOf = async () => (JSON.parse((await get(admin, '/api/status')).body) as { upstream: { last_ok: string | null } }).upstream;
  // The first test's device polls every 200 ms: stop it, and wait until its last request has
  // been answered (two reads 400 ms apart agree), so only the refused request could move the page.
  device?.stop();
  let before = await upstreamOf();
  for (;;) {
    await new Promise((r) => setTimeout(r, 400));
    const now = await upstreamOf();
    if (now.last_ok === before.last_ok) break;
    before = now;
  }
  const refused = await get(gateway.addresses.http!.port, '/api/devices//v1/deployments/device/deployments/next');
  assert.equal(refused.status, 400, refused.body);
  assert.deepEqual(await upstreamOf(), before);
});
