import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { client5Unavailable } from '../support/client5-fleet';
import { cacheGatewayConfig, e2eScenario } from '../support/e2e-scenario';
import { startGateway, type GatewayProcess } from '../support/gateway-process';
import { menderConnectUnavailable, startMenderConnect, uploadedFile, type MenderConnect } from '../support/mender-connect-process';

// A real mender-connect beside a real Mender client 5.1, through the gateway's
// HTTPS listener to the emulator's deviceconnect, driven as a user at the server's remote
// terminal would: a shell command and its output, 5 shells at once on one device each with its
// own output, a file up to the device and back byte-identical, and after the gateway restarts
// mender-connect comes back through it and a new shell works.

const unavailable = client5Unavailable() ?? menderConnectUnavailable();

const scenario = e2eScenario({
  dirPrefix: 'e2e-connect-',
  tls: 'split',
  server: { autoAccept: true },
  artifact: { name: 'e2e-connect-1', payloadBytes: 64 * 1024, seed: 'connect' },
  gatewayConfig: cacheGatewayConfig,
});

let connect: MenderConnect | undefined;
let restarted: GatewayProcess | undefined;
before(() => (unavailable ? undefined : scenario.start()));
after(async () => {
  await connect?.stop();
  await restarted?.stop();
  await scenario.stop();
});

test('mender-connect beside client 5.1 through the HTTPS listener: shell, 5 shells at once, a file up and back, reconnect after a gateway restart', {
  timeout: 150_000,
  skip: unavailable ?? false,
}, async (t) => {
  const { server, dir } = scenario;
  const fleet = await scenario.startClient5Fleet({ count: 1, macPrefix: '02:00:00:61' });
  const client = fleet.clients[0];
  await fleet.waitFor(() => server.deviceByIdentity(client.identity) !== undefined, 30_000, 'the device authenticated through the gateway');
  const id = server.deviceByIdentity(client.identity)!.id;
  connect = startMenderConnect({ dir: client.dir, busAddress: client.busAddress() });
  const remote = server.deviceconnect;
  await remote.waitForDevice(id, 45_000).catch((err: Error) => {
    throw new Error(`${err.message}\n[mender-connect]\n${connect!.logTail()}\n${client.logTail()}`);
  });
  const call = server.calls.find((c) => c.deviceId === id && c.path.endsWith('/deviceconnect/connect'))!;
  t.diagnostic(`mender-connect's upgrade at the emulator: status ${call.status}, user-agent ${call.headers['user-agent'] ?? '(none)'}`);

  // One command, its output back.
  const { shell } = await remote.openLiveShell(id);
  assert.equal((await shell.run('echo "answer=$((6*7))"')).trim(), 'answer=42');
  shell.close();

  // Five shells at once: each its own process and its own output.
  const shells = (await Promise.all([1, 2, 3, 4, 5].map(() => remote.openLiveShell(id)))).map((o) => o.shell);
  const outputs = await Promise.all(shells.map((s, i) => s.run(`echo "shell-${i}:$$"`)));
  const pids = new Set<string>();
  outputs.forEach((out, i) => {
    const m = /^shell-(\d):(\d+)$/.exec(out.trim());
    assert.ok(m, `shell ${i} printed ${JSON.stringify(out)}`);
    assert.equal(Number(m[1]), i, `shell ${i} got another shell's output: ${out}`);
    pids.add(m[2]);
  });
  assert.equal(pids.size, 5, `5 shells, shell pids ${[...pids].join(', ')}`);
  for (const s of shells) s.close();

  // A file up to the device and back.
  const data = randomBytes(300 * 1024 + 17);
  const devicePath = join(dir, 'uploaded.bin');
  const withLog = (err: Error): never => {
    throw new Error(`${err.message}\n[mender-connect]\n${connect!.logTail(25)}`);
  };
  await remote.uploadFile(id, devicePath, data).catch(withLog);
  assert.ok((await uploadedFile(devicePath)).equals(data), 'the file on the device differs from what was sent');
  const back = await remote.downloadFile(id, devicePath).catch(withLog);
  assert.ok(back.equals(data), `downloaded ${back.length} bytes, sent ${data.length}; not byte-identical`);

  // The gateway restarts: mender-connect comes back through it and a new shell works.
  const connectsBefore = remote.stats.connects;
  await scenario.gateway.stop();
  restarted = await startGateway({ configFile: join(dir, 'mender-gateway.conf'), logLevel: 'debug' });
  await new Promise<void>((resolve, reject) => {
    const deadline = Date.now() + 60_000;
    const poll = setInterval(() => {
      if (remote.stats.connects > connectsBefore && remote.connectedDevices().includes(id)) {
        clearInterval(poll);
        resolve();
      } else if (Date.now() > deadline) {
        clearInterval(poll);
        reject(new Error(`mender-connect did not reconnect within 60 s\n${connect!.logTail()}`));
      }
    }, 200);
  });
  const { shell: again } = await remote.openLiveShell(id);
  assert.equal((await again.run('echo back-again')).trim(), 'back-again');
  again.close();
  assert.match(restarted.output(), /deviceconnect\/connect/, 'the reconnect went through the restarted gateway');
  assert.doesNotMatch(connect.logTail(200), /panic/);
});
