import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startMenderServer, type MenderServer } from '../../fixtures/mender-server';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import { startGateway, type RunningGateway } from '../../lib/gateway';
import { journalMetrics, metricsRegistry } from '../../lib/observe/metrics';
import { statusSnapshot } from '../../lib/observe/status-page/status-snapshot';
import { captureLog } from '../support/capture-log';
import { testConfig } from '../support/gateway-config';
import { testDevice, until, type TestDevice } from './journal-harness';

// The report journal (docs/journal.md) against the Mender server emulator, stopped and started on the same port: reports
// sent while it is down are answered 204/200 by the gateway, kept on disk and delivered in
// order, once each, when it is back; other calls still get the JSON 502; 409 and 401 on replay
// are recorded; with the switch off the device gets the 502 as before.

// Short-lived tokens so that one can expire within a test; long enough that the tokens of the
// first test outlive its outage and replay on a loaded CI machine (they took 3 s there).
const TOKEN_SECONDS = 10;

let dir: string;
let store: S3Store;
let server: MenderServer;
let gateway: RunningGateway | undefined;
let off: RunningGateway | undefined;
const log = captureLog('debug');

const base = (g: RunningGateway | undefined = gateway): string => `http://127.0.0.1:${g!.addresses.http!.port}`;
const statusCalls = (deviceId: string): number =>
  server.calls.filter((c) => c.deviceId === deviceId && c.method === 'PUT' && /\/status$/.test(c.path)).length;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'journal-outage-'));
  store = await startS3Store({});
  server = await startMenderServer({ store, autoAccept: true, jwtLifetimeSeconds: TOKEN_SECONDS });
  const file = join(dir, 'a.mender');
  writeFileSync(file, randomBytes(8192));
  await server.uploadArtifact(file, { name: 'release-2', deviceTypes: ['test-device'] });
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
  await server?.start();
  await server?.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function deployTo(devices: TestDevice[]): Promise<{ deploymentId: string; ids: string[] }> {
  const ids = devices.map((d) => server.deviceByIdentity({ mac: d.mac })!.id);
  const { id: deploymentId } = server.createDeployment({ name: `d-${ids.length}-${Date.now()}`, artifactName: 'release-2', devices: ids });
  for (const d of devices) assert.equal((await d.next()).status, 200);
  return { deploymentId, ids };
}

describe('reports while upstream is down', () => {
  it('are answered as upstream would, then delivered in order and once each when it is back', { timeout: 60_000 }, async () => {
    const devices = await Promise.all([1, 2, 3].map((i) => testDevice(() => base(), `02:00:00:10:00:0${i}`)));
    const { deploymentId, ids } = await deployTo(devices);
    await Promise.all(devices.map((d) => d.authenticate())); // fresh tokens, to outlive the outage
    await server.stop();

    for (const d of devices) {
      for (const s of ['downloading', 'installing']) {
        const r = await d.status(deploymentId, s);
        assert.equal(r.status, 204, r.body);
        assert.equal(r.body, '');
        assert.equal(r.headers['x-men-gateway-journaled'], '1');
      }
      assert.equal((await d.inventory({ artifact_name: 'factory-image-0' })).status, 200);
      assert.equal((await d.status(deploymentId, 'failure')).status, 204);
      assert.equal((await d.log(deploymentId, `failed on ${d.mac}`)).status, 204);
      assert.equal((await d.inventory({ artifact_name: 'factory-image-0', mac: d.mac })).status, 200);
    }
    // Other calls answer the upstream error as before.
    const next = await devices[0]!.next();
    assert.equal(next.status, 502);
    assert.match(JSON.parse(next.body).error, /unreachable/);
    assert.ok(JSON.parse(next.body).request_id);
    assert.deepEqual(
      ids.map((id) => server.statuses(deploymentId, id)),
      [[], [], []],
    );
    // Two inventories per device, the older superseded: 4 status/log + 1 inventory each.
    assert.equal(journalMetrics.view()!.queued, 15);
    assert.equal(journalMetrics.view()!.superseded, 3);
    const snapshot = statusSnapshot({ version: 't', upstreamUrl: server.url });
    assert.deepEqual([snapshot.journal.enabled, snapshot.journal.queued, snapshot.journal.devices], [true, 15, 3]);

    await server.start();
    await until('the journal to drain', () => journalMetrics.view()!.queued === 0);
    for (const [i, id] of ids.entries()) {
      assert.deepEqual(server.statuses(deploymentId, id), ['downloading', 'installing', 'failure']);
      assert.equal(statusCalls(id), 3, 'each status reached the server once');
      assert.deepEqual(
        (server.deploymentLogs(deploymentId, id) as { message: string }[]).map((m) => m.message),
        [`failed on ${devices[i]!.mac}`],
      );
      assert.equal(server.devices().find((d) => d.id === id)!.inventory.mac, devices[i]!.mac);
    }
    const metrics = await metricsRegistry.metrics();
    assert.match(metrics, /mender_gateway_journal_ended_total\{result="delivered"\} 15/);
    assert.match(metrics, /mender_gateway_journal_journaled_total\{kind="status"\} 9/);
    assert.match(metrics, /mender_gateway_journal_queued 0/);
  });

  it('reports of a device whose token expired wait for its next token; an aborted deployment is counted', { timeout: 60_000 }, async () => {
    const [a, b] = await Promise.all([testDevice(() => base(), '02:00:00:10:01:01'), testDevice(() => base(), '02:00:00:10:01:02')]);
    const forA = await deployTo([a!]);
    const forB = await deployTo([b!]);
    const [idA, idB] = [forA.ids[0]!, forB.ids[0]!];
    const before = { ...journalMetrics.view()! };
    await b!.authenticate();
    await server.stop();
    assert.equal((await b!.status(forB.deploymentId, 'downloading')).status, 204);
    server.abortDeployment(forB.deploymentId);
    await server.start();
    await until('the aborted report to end', () => journalMetrics.view()!.replayed === before.replayed + 1);
    assert.deepEqual(server.statuses(forB.deploymentId, idB), []);
    assert.match(await metricsRegistry.metrics(), /mender_gateway_journal_ended_total\{result="aborted"\} 1/);

    await a!.authenticate();
    await server.stop();
    assert.equal((await a!.status(forA.deploymentId, 'downloading')).status, 204);
    await new Promise((r) => setTimeout(r, TOKEN_SECONDS * 1000 + 500));
    await server.start();
    // A's token expired: its report waits, it is not dropped.
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(server.statuses(forA.deploymentId, idA), []);
    assert.equal(journalMetrics.view()!.queued, 1);
    // The device authenticates again and reports on: the waiting report goes first, with the new token.
    await a!.authenticate();
    assert.equal((await a!.status(forA.deploymentId, 'installing')).status, 204);
    // Delivered at once, or (if it was queued behind the waiting one) at the next probe: in order either way.
    await until('both reports of A at the server', () => server.statuses(forA.deploymentId, idA).length === 2, 20_000);
    assert.deepEqual(server.statuses(forA.deploymentId, idA), ['downloading', 'installing']);
    await until('the journal to drain', () => journalMetrics.view()!.queued === 0);
    assert.equal(journalMetrics.view()!.failed, 0);
  });

  it('a device call upstream answers ends the outage at once: the journal does not wait for the next probe', {
    timeout: 60_000,
  }, async () => {
    const d = await testDevice(() => base(), '02:00:00:10:03:01');
    const { deploymentId, ids } = await deployTo([d]);
    await d.authenticate(); // a fresh token, to outlive the outage
    await server.stop();
    const from = log.lines.length;
    assert.equal((await d.status(deploymentId, 'downloading')).status, 204);
    // Probes 0.5, 1.5 and 3.5 s after the outage began fail; the next is due 4 s after the third.
    const failedProbes = (): string[] => log.lines.slice(from).filter((l) => l.includes('report replay failed'));
    await until('three failed probes', () => failedProbes().length >= 3, 30_000);
    const nextProbeAt = Date.parse(/time="([^"]+)"/.exec(failedProbes()[2]!)![1]!) + 4000;
    await server.start();
    const next = await d.next();
    assert.ok(next.status === 200 || next.status === 204, `next answered ${next.status}`);
    await until('the report at the server', () => server.statuses(deploymentId, ids[0]!).length === 1, 30_000);
    const delivered = server.calls.find((c) => c.deviceId === ids[0] && c.method === 'PUT' && /\/status$/.test(c.path))!.at;
    assert.ok(
      delivered < nextProbeAt,
      `delivered ${delivered - nextProbeAt} ms after the next probe was due: the probe, not the answer, ended the outage`,
    );
    await until('the journal to drain', () => journalMetrics.view()!.queued === 0);
  });

  it('with the switch off the device gets the upstream error, as before', { timeout: 30_000 }, async () => {
    const d = await testDevice(() => base(off), '02:00:00:10:02:01');
    const { deploymentId } = await deployTo([d]);
    await server.stop();
    try {
      const r = await d.status(deploymentId, 'downloading');
      assert.equal(r.status, 502);
      assert.match(JSON.parse(r.body).error, /unreachable/);
      assert.equal((await d.inventory({ a: 'b' })).status, 502);
    } finally {
      await server.start();
    }
  });

  it('logs no token', () => {
    assert.doesNotMatch(log.text(), /eyJ[A-Za-z0-9_-]{10,}/);
    assert.match(log.text(), /upstream unreachable: device reports go to the journal/);
  });
});
