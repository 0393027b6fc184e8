import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { startGateway, type GatewayProcess } from '../support/gateway-process';
import { killed, startJournalBed, stopJournalBed, type JournalBed } from './journal-bed';
import { testDevice, until, type Reply } from './journal-harness';

// `kill -9` of the gateway (bin/gateway.js) with reports in its journal, and again in
// the middle of a burst of reports; restart, upstream back: every report a device got its 204
// for is delivered exactly once, in order; one that got no answer is delivered at most once.

const DEVICES = 6;
let bed: JournalBed | undefined;
let server: JournalBed['server'];
let gateway: GatewayProcess | undefined;
let configFile: string;

before(async () => {
  bed = await startJournalBed('journal-kill-', 'release-3');
  ({ server, configFile } = bed);
  gateway = await startGateway({ configFile, waitFor: ['http'] });
});

after(async () => {
  await gateway?.stop();
  await stopJournalBed(bed);
});

it('kill -9 with reports in the journal and mid-burst: each answered report delivered exactly once, in order', {
  timeout: 90_000,
}, async () => {
  const devices = await Promise.all(
    Array.from({ length: DEVICES }, (_, i) => testDevice(() => gateway!.url('http'), `02:00:00:11:00:${String(i + 10)}`)),
  );
  const ids = devices.map((d) => server.deviceByIdentity({ mac: d.mac })!.id);
  const { id: deploymentId } = server.createDeployment({ name: 'kill', artifactName: 'release-3', devices: ids });
  for (const d of devices) assert.equal((await d.next()).status, 200);
  await server.stop();

  const answered: string[][] = devices.map(() => []);
  const send = async (i: number, status: string): Promise<void> => {
    const r: Reply | undefined = await devices[i]!.status(deploymentId, status).catch(() => undefined);
    if (r?.status === 204) answered[i]!.push(status);
  };
  for (const status of ['downloading', 'downloading', 'downloading']) await Promise.all(devices.map((_, i) => send(i, status)));
  assert.deepEqual(
    answered.map((a) => a.length),
    devices.map(() => 3),
  );

  await killed(gateway!);
  gateway = await startGateway({ configFile, waitFor: ['http'] });
  // Second kill in the middle of a burst: some reports answered, some not, maybe one torn.
  const burst = devices.map((_, i) => send(i, 'installing'));
  await new Promise((r) => setTimeout(r, 3));
  await killed(gateway);
  await Promise.all(burst);
  gateway = await startGateway({ configFile, waitFor: ['http'] });
  assert.match(gateway.output(), /report journal open/);

  await server.start();
  await until(
    'every answered report at the server',
    () => ids.every((id, i) => server.statuses(deploymentId, id).length >= answered[i]!.length),
    30_000,
  );
  await new Promise((r) => setTimeout(r, 1500)); // time for a duplicate to show up
  for (const [i, id] of ids.entries()) {
    const got = server.statuses(deploymentId, id);
    const calls = server.calls.filter((c) => c.deviceId === id && c.method === 'PUT' && c.path.endsWith('/status')).length;
    assert.equal(calls, got.length, `no duplicate for device ${i}`);
    // Answered ones all there, in order; an unanswered 'installing' at most once.
    assert.deepEqual(got.slice(0, answered[i]!.length), answered[i], `device ${i}: ${JSON.stringify(got)}`);
    assert.ok(got.length <= 4, `device ${i}: ${JSON.stringify(got)}`);
  }
  const total = answered.flat().length;
  assert.ok(total >= DEVICES * 3, `answered ${total}`);
});
