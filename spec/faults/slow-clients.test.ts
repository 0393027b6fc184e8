import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { tempDir } from '../integration/cache-harness';
import type { GatewayProcess } from '../support/gateway-process';
import { alive, assertNoSecrets, fdCount, openFds, gatewayConfig, knob, newSecret, request, runGateway, settledFds } from './fault-harness';
import { recordFigures } from './figures';

// Slowloris (headers one byte a second) and slow-body clients against the real gateway process:
// devices on normal connections are answered as fast as without them, and every slow
// connection is closed by the gateway within a bound (the listeners' headers/request timeouts or
// the upstream timeout), after which the descriptors are back. FAULTS_SLOW_CLIENTS (default 100 of each).

const SLOW = knob('FAULTS_SLOW_CLIENTS', 100);
// lib/server/listeners.ts: headers within 18 s, checked every 2 s; the rest is a loaded machine's slack.
const BOUND_MS = 40_000;
// A slow body is bounded only by the request timeout (600 s, so a slow device's 4 MiB log gets
// through; UpstreamServer.Timeout does not fire while bytes trickle): only `make faults` waits
// for that (FAULTS_SLOW_BODY_BOUND_S).
const BODY_BOUND_MS = knob('FAULTS_SLOW_BODY_BOUND_S', 0) * 1000;
const secret = newSecret();
let dir: string;
let gw: GatewayProcess;
let upstream: http.Server;

before(async () => {
  dir = await tempDir('faults-slow-');
  upstream = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}'));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  gw = await runGateway({
    dir,
    name: 'slow-clients',
    config: gatewayConfig({ upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, secret, timeout: '5s' }),
  });
});
after(async () => {
  await gw?.stop();
  upstream.closeAllConnections();
  await new Promise((r) => upstream.close(r));
  await fsp.rm(dir, { recursive: true, force: true });
});

/** A connection that trickles `text` one byte per `everyMs`, then keeps trickling spaces; resolves when the gateway closes it. */
function trickle(port: number, text: string, everyMs: number): { closed: Promise<number>; answered: Promise<number>; stop(): void } {
  const started = Date.now();
  const socket = net.connect(port, '127.0.0.1');
  let i = 0;
  const timer = setInterval(() => {
    if (socket.destroyed) return;
    socket.write(i < text.length ? text[i] : 'x');
    i++;
  }, everyMs);
  const answered = new Promise<number>((r) => socket.once('data', () => r(Date.now() - started)));
  socket.on('data', () => undefined);
  socket.on('error', () => undefined);
  const closed = new Promise<number>((r) =>
    socket.on('close', () => {
      clearInterval(timer);
      r(Date.now() - started);
    }),
  );
  return { closed, answered, stop: () => socket.destroy() };
}

test(`${SLOW} slowloris and ${SLOW} slow-body clients: other devices unaffected, slowloris closed within ${BOUND_MS / 1000} s${BODY_BOUND_MS ? `, slow bodies within ${BODY_BOUND_MS / 1000} s` : ''}`, {
  timeout: BOUND_MS + BODY_BOUND_MS + 60_000,
}, async () => {
  const base = gw.url('http');
  const port = Number(base.split(':').pop());
  const pid = gw.process.pid!;
  const fdBefore = fdCount(pid);
  const normal = async (): Promise<number> => {
    const t = Date.now();
    const r = await request(`${base}/api/devices/v1/inventory/device/attributes`, {
      method: 'PUT',
      body: '[]',
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer x' },
    });
    assert.equal(r.status, 200);
    return Date.now() - t;
  };
  const quiet = Math.max(...(await Promise.all(Array.from({ length: 20 }, normal))));
  const slow = [
    ...Array.from({ length: SLOW }, () => trickle(port, 'GET /api/internal/v1/gateway/alive HTTP/1.1\r\nHost: gw\r\nX-Slow: ', 1_000)),
    ...Array.from({ length: SLOW }, () =>
      trickle(
        port,
        `PUT /api/devices/v1/inventory/device/attributes HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n[`,
        5,
      ),
    ),
  ];
  try {
    await new Promise((r) => setTimeout(r, 2_000));
    const busy: number[] = [];
    for (let round = 0; round < 5; round++) busy.push(...(await Promise.all(Array.from({ length: 20 }, normal))));
    assert.ok(
      Math.max(...busy) < Math.max(2_000, quiet * 5),
      `devices slowed down: ${Math.max(...busy)} ms with slow clients, ${quiet} ms without`,
    );
    assert.equal((await request(`${base}/api/internal/v1/gateway/alive`)).status, 204);
    const within = (p: Promise<number>, ms: number) => Promise.race([p, new Promise<number>((r) => setTimeout(() => r(Infinity), ms))]);
    const lorisTimes = await Promise.all(slow.slice(0, SLOW).map((s) => within(s.closed, BOUND_MS)));
    const open = lorisTimes.filter((t) => t === Infinity).length;
    assert.equal(open, 0, `${open} slowloris connections still open after ${BOUND_MS / 1000} s`);
    const bodyTimes = BODY_BOUND_MS ? await Promise.all(slow.slice(SLOW).map((s) => within(s.closed, BODY_BOUND_MS))) : [];
    assert.equal(bodyTimes.filter((t) => t === Infinity).length, 0, `slow-body connections still open after ${BODY_BOUND_MS / 1000} s`);
    const times = [...lorisTimes, ...(bodyTimes.length ? bodyTimes : [NaN])];
    assert.ok(alive(gw));
    // The slow bodies still trickling leave; then the gateway must hold what it held before.
    for (const s of slow) s.stop();
    const fdAfter = await settledFds(pid, fdBefore, 20_000);
    assert.ok(fdAfter <= fdBefore + 1, `descriptors: ${fdBefore} before, ${fdAfter} after: ${await openFds(pid)}`);
    assertNoSecrets(gw.output(), [secret]);
    recordFigures('slowloris and slow-body clients', {
      trials: 1,
      faults: slow.length,
      inputs: slow.length + busy.length + 20,
      bytesLost: 0,
      note: `slowloris closed after ≤ ${Math.round(Math.max(...times.slice(0, SLOW)) / 1000)} s, slow bodies ${bodyTimes.length ? `closed after ≤ ${Math.round(Math.max(...bodyTimes) / 1000)} s` : 'not waited for'}; device latency ${quiet} ms → ${Math.max(...busy)} ms`,
    });
  } finally {
    for (const s of slow) s.stop();
  }
});
