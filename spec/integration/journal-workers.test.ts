import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { startGateway, type GatewayProcess } from '../support/gateway-process';
import { childPids } from '../support/worker-gateway';
import { killed, startJournalBed, stopJournalBed, type JournalBed } from './journal-bed';
import { call, testDevice, until, type TestDevice } from './journal-harness';

// The report journal with Workers: 2 (bin/gateway.js). Devices on fresh
// connections reach both workers; the primary is the journal's one writer and keeps the
// known-good tokens the workers tell it of (a forged one is not journaled). Reports answered
// during an outage are delivered once, in order, when upstream is back; a device's `next`
// waits for its reports; kill -9 of the whole gateway (primary and workers) with reports in the
// journal loses none of them.

const DEVICES = 6;
let bed: JournalBed | undefined;
let server: JournalBed['server'];
let gateway: GatewayProcess | undefined;
let configFile: string;
let devices: TestDevice[];
let ids: string[];

const start = async (): Promise<GatewayProcess> => {
  const g = await startGateway({ configFile, waitFor: ['http'], logLevel: 'debug', env: { ...process.env, WORKERS: '' } });
  await until(
    'both workers listening',
    () => new Set([...g.output().matchAll(/msg="listening"[^\n]* worker=(\d+)\n/g)].map((m) => m[1])).size === 2,
  );
  return g;
};
const statusCalls = (deploymentId: string, id: string): number =>
  server.calls.filter((c) => c.deviceId === id && c.method === 'PUT' && c.path.endsWith(`${deploymentId}/status`) && c.status === 204)
    .length;

before(async () => {
  bed = await startJournalBed('journal-workers-', 'release-4', { Workers: 2, ShutdownTimeout: '5s' });
  ({ server, configFile } = bed);
  gateway = await start();
  devices = await Promise.all(
    Array.from({ length: DEVICES }, (_, i) => testDevice(() => gateway!.url('http'), `02:00:00:12:00:${String(i + 10)}`)),
  );
  ids = devices.map((d) => server.deviceByIdentity({ mac: d.mac })!.id);
});

after(async () => {
  const pid = gateway?.process.pid;
  const children = pid ? childPids(pid) : [];
  await gateway?.stop(15_000);
  for (const c of children) {
    try {
      process.kill(c, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await stopJournalBed(bed);
});

it('outage: both workers journal through the primary; replayed once, in order; next waits for the reports', {
  timeout: 60_000,
}, async () => {
  const { id: deploymentId } = server.createDeployment({ name: 'workers', artifactName: 'release-4', devices: ids });
  for (const d of devices) assert.equal((await d.next()).status, 200);
  await server.stop();
  for (const status of ['downloading', 'installing', 'success']) {
    const replies = await Promise.all(devices.map((d) => d.status(deploymentId, status)));
    assert.deepEqual(
      replies.map((r) => r.status),
      devices.map(() => 204),
      status,
    );
  }
  const out = gateway!.output();
  assert.match(out, /msg="report journal kept by the cluster primary for every worker"/);
  const servedBy = new Set([...out.matchAll(/route=deployment-status[^\n]*status=204[^\n]* worker=(\d+)\n/g)].map((m) => m[1]));
  assert.equal(servedBy.size, 2, 'both workers took reports');
  assert.equal((out.match(/msg="report journaled"/g) ?? []).length, 3 * DEVICES);
  // A token that only names a device (unsigned) is not journaled, whichever worker takes it.
  const forged = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: ids[0] })).toString('base64url')}.`;
  for (let i = 0; i < 4; i++) {
    const r = await call(
      gateway!.url('http'),
      'PUT',
      `/api/devices/v1/deployments/device/deployments/${deploymentId}/status`,
      forged,
      '{"status":"failure"}\n',
    );
    assert.equal(r.status, 502, r.body);
  }
  // Upstream down and reports waiting: next gets the upstream error, not a stale deployment.
  assert.equal((await devices[0]!.next()).status, 502);

  await server.start();
  // The first device's next replays its reports before it goes upstream: the deployment is done.
  assert.equal((await devices[0]!.next()).status, 204);
  assert.deepEqual(server.statuses(deploymentId, ids[0]!), ['downloading', 'installing', 'success']);
  await until('every report at the server', () => ids.every((id) => server.statuses(deploymentId, id).length >= 3), 30_000);
  await new Promise((r) => setTimeout(r, 1000)); // time for a duplicate to show up
  for (const [i, id] of ids.entries()) {
    assert.deepEqual(server.statuses(deploymentId, id), ['downloading', 'installing', 'success'], `device ${i}`);
    assert.equal(statusCalls(deploymentId, id), 3, `device ${i}: no duplicate`);
  }
});

it('kill -9 of the primary with reports in the journal: no worker outlives it; after a restart every report is delivered once', {
  timeout: 60_000,
}, async () => {
  const { id: deploymentId } = server.createDeployment({ name: 'workers-kill', artifactName: 'release-4', devices: ids });
  for (const d of devices) assert.equal((await d.next()).status, 200);
  await server.stop();
  for (const status of ['downloading', 'installing']) {
    const replies = await Promise.all(devices.map((d) => d.status(deploymentId, status)));
    assert.deepEqual(
      replies.map((r) => r.status),
      devices.map(() => 204),
      status,
    );
  }
  const workers = childPids(gateway!.process.pid!);
  assert.equal(workers.length, 2);
  await killed(gateway!);
  await until(
    'the workers to exit with their primary',
    () =>
      workers.every((w) => {
        try {
          process.kill(w, 0);
          return false;
        } catch {
          return true;
        }
      }),
    10_000,
  );
  gateway = await start();
  assert.match(gateway.output(), /msg="report journal open"[^\n]* queued=12/);
  await server.start();
  await until('every report at the server', () => ids.every((id) => server.statuses(deploymentId, id).length >= 2), 30_000);
  await new Promise((r) => setTimeout(r, 1000));
  for (const [i, id] of ids.entries()) {
    assert.deepEqual(server.statuses(deploymentId, id), ['downloading', 'installing'], `device ${i}`);
    assert.equal(statusCalls(deploymentId, id), 2, `device ${i}: no duplicate`);
  }
});
