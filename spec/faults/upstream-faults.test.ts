import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import http from 'node:http';
import type { Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { tempDir } from '../integration/cache-harness';
import type { GatewayProcess } from '../support/gateway-process';
import { freePort } from '../support/listen';
import {
  alive,
  assertJsonError,
  assertNoSecrets,
  fdCount,
  gatewayConfig,
  knob,
  newSecret,
  request,
  runGateway,
  settledFds,
} from './fault-harness';
import { recordFigures } from './figures';

// The Mender server behind the real gateway process goes down, turns slow, resets connections,
// answers garbage or cuts a body, in cycles: devices get 502/504 with Mender's JSON error (or a
// cut body, never a clean short one), the health probe keeps answering, the gateway recovers
// on the next request once the server is back, and holds no more descriptors than before.
// FAULTS_UPSTREAM_CYCLES (default 3).

const CYCLES = knob('FAULTS_UPSTREAM_CYCLES', 3);
type Mode = 'ok' | 'slow' | 'reset' | 'garbage' | 'cut';
let mode: Mode = 'ok';
let port: number;
let upstream: http.Server | undefined;
const sockets = new Set<Socket>();
let dir: string;
let gw: GatewayProcess;
const secret = newSecret();

async function upstreamUp(): Promise<void> {
  upstream = http.createServer((req, res) => {
    req.resume();
    if (mode === 'reset') return void req.socket.destroy();
    if (mode === 'garbage') return void req.socket.end('SMTP ready\r\n\r\n');
    if (mode === 'slow') return void setTimeout(() => res.writeHead(200).end('{}'), 3_000).unref();
    if (mode === 'cut') {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': 1000 });
      res.write('{"id":"');
      return void setTimeout(() => req.socket.destroy(), 50);
    }
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ id: 'dep-1', path: req.url }));
  });
  upstream.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => upstream!.listen(port, '127.0.0.1', r));
}

async function upstreamDown(): Promise<void> {
  for (const s of sockets) s.destroy();
  if (upstream) await new Promise((r) => upstream!.close(r));
  upstream = undefined;
}

before(async () => {
  dir = await tempDir('faults-upstream-');
  port = await freePort();
  await upstreamUp();
  gw = await runGateway({
    dir,
    name: 'upstream-faults',
    config: gatewayConfig({ upstream: `http://127.0.0.1:${port}`, secret, timeout: '1s' }),
  });
});
after(async () => {
  await gw?.stop();
  await upstreamDown();
  await fsp.rm(dir, { recursive: true, force: true });
});

const INVENTORY = '/api/devices/v1/inventory/device/attributes';

test(`Mender server down, slow, resetting, garbage, cut bodies, ${CYCLES} cycles: 502/504 JSON, still up, recovers`, {
  timeout: 60_000 + CYCLES * 20_000,
}, async () => {
  const base = gw.url('http');
  const pid = gw.process.pid!;
  const ok = async (): Promise<void> => {
    const r = await request(base + INVENTORY, { headers: { Authorization: 'Bearer x' } });
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(JSON.parse(r.body.toString()).path, INVENTORY);
  };
  await ok();
  const fdBefore = await settledFds(pid, 0, 500);
  let faults = 0;
  let requests = 1;
  const probe = async (): Promise<void> => assert.equal((await request(`${base}/api/internal/v1/gateway/alive`)).status, 204);
  for (let c = 0; c < CYCLES; c++) {
    await upstreamDown();
    for (let i = 0; i < 5; i++)
      assertJsonError(await request(base + INVENTORY, { method: i % 2 ? 'PUT' : 'GET', body: i % 2 ? '[]' : undefined }), 502);
    await probe();
    await upstreamUp();
    await ok();

    mode = 'slow';
    const started = Date.now();
    const slow = await Promise.all(Array.from({ length: 5 }, () => request(base + INVENTORY)));
    for (const r of slow) assertJsonError(r, 504);
    assert.ok(
      Date.now() - started < 2_900,
      `504 after UpstreamServer.Timeout (1s), not after the server's 3s (${Date.now() - started} ms)`,
    );
    await probe();

    for (const m of ['reset', 'garbage'] as const) {
      mode = m;
      for (let i = 0; i < 5; i++) assertJsonError(await request(base + INVENTORY), 502);
    }

    mode = 'cut';
    await assert.rejects(
      request(base + INVENTORY),
      /aborted|ECONNRESET|socket hang up/,
      'a cut body reaches the device as a cut, not a clean end',
    );

    mode = 'ok';
    await ok();
    faults += 5 + 5 + 10 + 1;
    requests += 5 + 5 + 10 + 1 + 3 + 2;
  }
  assert.ok(alive(gw));
  const fdAfter = await settledFds(pid, fdBefore, 20_000);
  assert.ok(fdAfter <= fdBefore + 1, `descriptors: ${fdBefore} before, ${fdAfter} after`);
  assert.match(gw.output(), /level=(warn|error)[^\n]*upstream/i, 'the log says the upstream failed');
  assertNoSecrets(gw.output(), [secret]);
  recordFigures('Mender server faults', {
    trials: CYCLES,
    faults,
    inputs: requests,
    bytesLost: 0,
    note: `fd ${fdBefore}→${fdAfter}, ${fdCount(pid)} now`,
  });
});
