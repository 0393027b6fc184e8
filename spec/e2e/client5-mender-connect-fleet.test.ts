import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { client5Unavailable } from '../support/client5-fleet';
import { cacheGatewayConfig, e2eScenario } from '../support/e2e-scenario';
import { menderConnectUnavailable, startMenderConnect, type MenderConnect } from '../support/mender-connect-process';

// At scale: 20 real mender-connect daemons, each beside its own client 5.1, hold
// their WebSockets through the gateway while a user opens 100 shell sessions in all (5 per
// device) and each runs a command; the gateway's RSS before and after is in the output.

const DEVICES = 20;
const SHELLS_PER_DEVICE = 5;
const unavailable = client5Unavailable() ?? menderConnectUnavailable();

const scenario = e2eScenario({
  dirPrefix: 'e2e-connect-fleet-',
  tls: 'split',
  server: { autoAccept: true },
  artifact: { name: 'e2e-connect-fleet-1', payloadBytes: 16 * 1024, seed: 'connect-fleet' },
  gatewayConfig: cacheGatewayConfig,
});

const daemons: MenderConnect[] = [];
before(() => (unavailable ? undefined : scenario.start()));
after(async () => {
  await Promise.all(daemons.map((d) => d.stop()));
  await scenario.stop();
});

/** RSS of the gateway and its workers, in MB. */
function gatewayRssMb(pid: number): number {
  const children = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean)
    .map(Number);
  let kb = 0;
  for (const p of [pid, ...children]) {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
    kb += Number(m?.[1] ?? 0);
  }
  return kb / 1024;
}

test(`${DEVICES} mender-connect daemons beside client 5.1 through the gateway: ${DEVICES * SHELLS_PER_DEVICE} shell sessions, each its own output`, {
  timeout: 240_000,
  skip: unavailable ?? false,
}, async (t) => {
  const { server, gateway } = scenario;
  const pid = gateway.process.pid!;
  const rssBefore = gatewayRssMb(pid);
  const fleet = await scenario.startClient5Fleet({ count: DEVICES, macPrefix: '02:00:00:62', pollSeconds: 10 });
  await fleet.waitFor(
    () => fleet.clients.every((c) => server.deviceByIdentity(c.identity)),
    60_000,
    'every device authenticated through the gateway',
  );
  const ids = fleet.clients.map((c) => server.deviceByIdentity(c.identity)!.id);
  for (const c of fleet.clients) {
    daemons.push(startMenderConnect({ dir: c.dir, busAddress: c.busAddress() }));
  }
  const remote = server.deviceconnect;
  await Promise.all(
    ids.map((id, i) =>
      remote.waitForDevice(id, 90_000).catch((err: Error) => {
        throw new Error(`${err.message}\n[mender-connect ${i}]\n${daemons[i].logTail()}`);
      }),
    ),
  );
  const rssConnected = gatewayRssMb(pid);

  const started = Date.now();
  const settled = await Promise.allSettled(
    ids.flatMap((id, d) =>
      Array.from({ length: SHELLS_PER_DEVICE }, async (_, s) => {
        const { shell, blank } = await remote.openLiveShell(id);
        const out = (await shell.run(`echo "dev-${d}-shell-${s}:$$"`, 60_000)).trim();
        return { d, s, out, shell, blank };
      }),
    ),
  );
  const elapsed = Date.now() - started;
  const failed = settled.flatMap((r, i) =>
    r.status === 'rejected'
      ? [`device ${Math.floor(i / SHELLS_PER_DEVICE)} shell ${i % SHELLS_PER_DEVICE}: ${(r.reason as Error).message}`]
      : [],
  );
  const firstBad = settled.findIndex((r) => r.status === 'rejected');
  assert.deepEqual(
    failed,
    [],
    firstBad < 0
      ? ''
      : `emulator deviceconnect stats ${JSON.stringify(remote.stats)}\n[mender-connect of device ${Math.floor(firstBad / SHELLS_PER_DEVICE)}]\n${daemons[Math.floor(firstBad / SHELLS_PER_DEVICE)].logTail(30)}`,
  );
  const results = settled.map(
    (r) => (r as PromiseFulfilledResult<{ d: number; s: number; out: string; shell: { close(): void }; blank: number }>).value,
  );
  // Closed once all have answered: mender-connect stops a shell in its message loop, 4 s each.
  for (const r of results) r.shell.close();
  const pids = new Set<string>();
  for (const { d, s, out } of results) {
    const m = /^dev-(\d+)-shell-(\d+):(\d+)$/.exec(out);
    assert.ok(m && Number(m[1]) === d && Number(m[2]) === s, `device ${d} shell ${s} printed ${JSON.stringify(out)}`);
    pids.add(`${d}:${m[3]}`);
  }
  assert.equal(pids.size, DEVICES * SHELLS_PER_DEVICE, 'every shell session ran in a process of its own');
  assert.equal(remote.connectedDevices().filter((id) => ids.includes(id)).length, DEVICES, 'every mender-connect still connected');
  const rssAfter = gatewayRssMb(pid);
  const blank = results.reduce((n, r) => n + r.blank, 0);
  t.diagnostic(
    `${results.length} shell sessions on ${DEVICES} devices answered in ${elapsed} ms (${blank} more opened stayed blank: mender-connect's output-reader race, reopened); gateway RSS ${rssBefore.toFixed(1)} MB before the devices, ${rssConnected.toFixed(1)} MB with ${DEVICES} mender-connect WebSockets held, ${rssAfter.toFixed(1)} MB after the sessions`,
  );
});
