import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { download, md5, publishedIds, startOrigin, tempDir, waitFor, type TestOrigin } from '../integration/cache-harness';
import type { GatewayProcess } from '../support/gateway-process';
import {
  alive,
  assertNoSecrets,
  fdCount,
  openFds,
  gatewayConfig,
  knob,
  linkPath,
  newSecret,
  runGateway,
  settledFds,
  signerFor,
} from './fault-harness';
import { recordFigures } from './figures';

// Devices by the hundreds leave mid-download, at random byte counts, from a cold artifact the
// real gateway process is filling: the fill goes on to the end (one origin download), the few
// devices that stay get every byte, and the process is back to its descriptor count.
// FAULTS_DISCONNECTS (default 300).

const DEVICES = knob('FAULTS_DISCONNECTS', 300);
const SIZE = 3 * 1024 * 1024;
const secret = newSecret();
const signer = signerFor(secret, 'http://gateway.invalid');
let dir: string;
let body: Buffer;
let origin: TestOrigin;
let gw: GatewayProcess;

before(async () => {
  dir = await tempDir('faults-disconnect-');
  body = randomBytes(SIZE);
  origin = await startOrigin(body, { throttle: 2_000_000 });
  gw = await runGateway({
    dir,
    name: 'device-disconnects',
    config: gatewayConfig({ upstream: 'http://127.0.0.1:9', cachePath: path.join(dir, 'cache'), secret }),
  });
});
after(async () => {
  await gw?.stop();
  await origin?.close();
  await fsp.rm(dir, { recursive: true, force: true });
});

test(`${DEVICES} devices disconnect mid-download: the fill completes once, those who stay get every byte, no descriptor leak`, {
  timeout: 120_000,
}, async () => {
  const base = gw.url('http');
  const pid = gw.process.pid!;
  const fdBefore = fdCount(pid);
  const link = (): string => base + linkPath(signer, origin.url('crowd.mender'));
  const leaving = [];
  for (let i = 0; i < DEVICES; i++) {
    // Some before any byte, most somewhere in the first half, a few while a range is served.
    const abortAfter = i % 10 === 0 ? 1 : Math.floor(Math.random() * SIZE * 0.5);
    leaving.push(
      download(link(), { abortAfter, range: i % 7 === 0 ? `bytes=${Math.floor((Math.random() * SIZE) / 2)}-` : undefined }).catch(
        () => null,
      ),
    );
    if (i % 50 === 49) await new Promise((r) => setTimeout(r, 50));
  }
  const staying = [download(link()), download(link()), download(link(), { range: `bytes=${SIZE - 1000}-` })];
  await Promise.all(leaving);
  const [a, b, tail] = await Promise.all(staying);
  for (const d of [a, b]) {
    assert.equal(d.status, 200);
    assert.ok(d.complete);
    assert.equal(d.md5, md5(body));
  }
  assert.equal(tail.status, 206);
  assert.equal(tail.md5, md5(body.subarray(SIZE - 1000)));
  await waitFor(async () => (await publishedIds(path.join(dir, 'cache'))).length === 1, 20_000, 'the fill to publish');
  assert.equal(origin.fullDownloads, 1, 'one origin download for the whole crowd');
  assert.ok(alive(gw));
  // Idle keep-alive sockets to a live origin are a pool, not a leak: the origin goes first.
  await origin.close();
  const fdAfter = await settledFds(pid, fdBefore, 25_000);
  assert.ok(fdAfter <= fdBefore + 1, `descriptors: ${fdBefore} before, ${fdAfter} after: ${await openFds(pid)}`);
  assertNoSecrets(gw.output(), [secret]);
  recordFigures('devices disconnecting mid-download', {
    trials: 1,
    faults: DEVICES,
    inputs: DEVICES + 3,
    bytesLost: 0,
    note: `fd ${fdBefore}→${fdAfter}, 1 origin download`,
  });
});
