import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { download, md5, publishedIds, startOrigin, tempDir, type TestOrigin } from '../integration/cache-harness';
import { parseTmpName } from '../../lib/cache/store/cache-layout';
import { processTree } from '../support/process-stats';
import { assertNoSecrets, gatewayConfig, kill9, knob, linkPath, newSecret, runGateway, signerFor } from './fault-harness';
import { recordFigures } from './figures';

// kill -9 of the real gateway process (`node bin/gateway.js`) at random points of cache fills,
// restarting on the same cache directory each time. Every body a device receives completely is
// hashed: 0 corrupt or partial artifacts served; after the last kill every fill completes on
// demand. FAULTS_KILL_TRIALS (default 15; `make faults`: 100).

const TRIALS = knob('FAULTS_KILL_TRIALS', 15);
const SIZE = 1536 * 1024;

let dir: string;
let body: Buffer;
let origin: TestOrigin;
const secret = newSecret();
const logs: string[] = [];

before(async () => {
  dir = await tempDir('faults-kill-');
  body = randomBytes(SIZE);
  origin = await startOrigin(body, { throttle: 3_000_000 });
});
after(async () => {
  await origin?.close();
  await fsp.rm(dir, { recursive: true, force: true });
});

test(`kill -9 of bin/gateway.js at random moments of a fill, ${TRIALS} trials: nothing corrupt or partial is served, every fill completes on demand`, {
  timeout: 60_000 + TRIALS * 6_000,
}, async () => {
  const cachePath = path.join(dir, 'cache');
  const signer = signerFor(secret, 'http://gateway.invalid');
  const config = gatewayConfig({ upstream: 'http://127.0.0.1:9', cachePath, secret });
  const names: string[] = [];
  let served = 0;
  let broken = 0;
  let bytesWrong = 0;
  for (let i = 0; i < TRIALS; i++) {
    const gw = await runGateway({ dir, name: `kill-${i}`, config });
    const name = `victim-${i}.mender`;
    names.push(name);
    const base = gw.url('http');
    // A new artifact and an older one (maybe cached, maybe half-filled by a dead process), a ranged resume too.
    const older = names[Math.floor(Math.random() * names.length)];
    const devices = [
      download(base + linkPath(signer, origin.url(name))),
      download(base + linkPath(signer, origin.url(name))),
      download(base + linkPath(signer, origin.url(older))),
      download(base + linkPath(signer, origin.url(older)), { range: `bytes=${SIZE / 2}-` }),
    ].map((d) => d.catch(() => null));
    // The moment: when the origin has sent a random share (0-250 %) of one artifact, so
    // kills land before, during and just after the fill whatever the machine's load.
    const sentBefore = origin.bytesSent;
    const at = Math.random() * 2.5 * SIZE;
    const until = Date.now() + 3_000;
    while (origin.bytesSent - sentBefore < at && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    const orphans = await kill9(gw);
    assert.deepEqual(orphans, [], `trial ${i}: worker processes outlived the killed gateway`);
    logs.push(gw.output());
    for (const [k, d] of (await Promise.all(devices)).entries()) {
      if (!d?.complete) {
        broken++;
        continue;
      }
      served++;
      const want = k === 3 ? md5(body.subarray(SIZE / 2)) : md5(body);
      if (d.md5 !== want) bytesWrong += d.length;
      assert.equal(d.md5, want, `trial ${i}: device ${k} got a clean end with wrong bytes (status ${d.status})`);
    }
    // What is published on disk is always whole.
    for (const id of await publishedIds(cachePath)) {
      assert.equal(md5(await fsp.readFile(path.join(cachePath, 'v1', 'objects', id))), md5(body), `trial ${i}: published entry ${id}`);
    }
  }
  // A last process: every artifact completes on demand, with the right bytes.
  const gw = await runGateway({ dir, name: 'kill-final', config });
  try {
    const results = await Promise.all(names.map((n) => download(gw.url('http') + linkPath(signer, origin.url(n)))));
    for (const [i, d] of results.entries()) {
      assert.equal(d.status, 200, names[i]);
      assert.ok(d.complete, names[i]);
      assert.equal(d.md5, md5(body), names[i]);
    }
    assert.equal((await publishedIds(cachePath)).length, names.length);
    // Only this last gateway's own processes (its primary and workers) may have tmp files now.
    const live = new Set(processTree(gw.process.pid!));
    const leftovers = (await fsp.readdir(path.join(cachePath, 'v1', 'tmp'))).filter((n) => !live.has(parseTmpName(n)?.pid ?? -1));
    assert.deepEqual(leftovers, [], 'temporary files of dead processes are cleaned at start');
  } finally {
    await gw.stop();
    logs.push(gw.output());
  }
  assertNoSecrets(logs.join(''), [secret]);
  recordFigures('kill -9 during cache fills', {
    trials: TRIALS,
    faults: TRIALS,
    inputs: served + broken,
    bytesLost: bytesWrong,
    note: `${served} complete downloads verified, ${broken} cut by the kill`,
  });
});
