import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { download, md5, publishedIds, startOrigin, tempDir, type OriginBehaviour, type TestOrigin } from '../integration/cache-harness';
import type { GatewayProcess } from '../support/gateway-process';
import {
  alive,
  assertJsonError,
  assertNoSecrets,
  gatewayConfig,
  linkPath,
  newSecret,
  request,
  rssKiB,
  runGateway,
  settledFds,
  signerFor,
} from './fault-harness';
import { recordFigures } from './figures';

// Artifact origins that break, against the real gateway process with the cache on: nothing
// wrong is published, a device sees a broken download (never a clean short one) it can resume
// once the origin heals, and the process holds no more descriptors than before.

const SIZE = 1024 * 1024;
const secret = newSecret();
const signer = signerFor(secret, 'http://gateway.invalid');
let dir: string;
let cachePath: string;
let body: Buffer;
let gw: GatewayProcess;
const origins: TestOrigin[] = [];

before(async () => {
  dir = await tempDir('faults-origin-');
  cachePath = path.join(dir, 'cache');
  body = randomBytes(SIZE);
  gw = await runGateway({ dir, name: 'origin-faults', config: gatewayConfig({ upstream: 'http://127.0.0.1:9', cachePath, secret }) });
});
after(async () => {
  await Promise.all(origins.map((o) => o.close()));
  await gw?.stop();
  await fsp.rm(dir, { recursive: true, force: true });
});

type Outcome = 'broken' | 'error' | 'whole';
const CASES: { name: string; behaviour: () => OriginBehaviour; outcome: Outcome }[] = [
  { name: 'truncates every response at half', behaviour: () => ({ truncateAt: SIZE / 2 }), outcome: 'broken' },
  { name: 'claims a longer Content-Length than it sends', behaviour: () => ({ claimedLength: SIZE + 4096 }), outcome: 'broken' },
  { name: 'sends bytes that do not match its ETag', behaviour: () => ({ corrupt: true }), outcome: 'broken' },
  { name: 'answers 500', behaviour: () => ({ status: 500 }), outcome: 'error' },
  { name: 'answers 503', behaviour: () => ({ status: 503 }), outcome: 'error' },
  { name: 'resets the connection twice mid-body', behaviour: () => ({ cutAt: [SIZE / 4, (SIZE * 3) / 4] }), outcome: 'whole' },
  { name: 'is very slow (200 KB/s)', behaviour: () => ({ throttle: 200_000 }), outcome: 'whole' },
  {
    name: 'stalls seconds between chunks (8 KB/s)',
    behaviour: () => ({ throttle: 8_000, truncateAt: 48 * 1024, cutAt: [] }),
    outcome: 'broken',
  },
];

test('origin faults: nothing wrong published, devices resume after the origin heals, no descriptor or memory leak', {
  timeout: 120_000,
}, async () => {
  const base = gw.url('http');
  const pid = gw.process.pid!;
  // Warm up (first fill loads the code paths), then take the baseline.
  const warm = await startOrigin(body);
  assert.equal((await download(base + linkPath(signer, warm.url('warm.mender')))).md5, md5(body));
  await warm.close();
  const fdBefore = await settledFds(pid, 0, 1_000);
  const rssBefore = rssKiB(pid);

  let survived = 0;
  let lost = 0;
  await Promise.all(
    CASES.map(async (c, i) => {
      const origin = await startOrigin(body, c.behaviour());
      origins.push(origin);
      const name = `case-${i}.mender`;
      const link = base + linkPath(signer, origin.url(name));
      const devices = await Promise.all([download(link), download(link)]);
      for (const d of devices) {
        if (c.outcome === 'whole') {
          assert.equal(d.status, 200, c.name);
          assert.ok(d.complete, c.name);
          assert.equal(d.md5, md5(body), c.name);
        } else if (c.outcome === 'error') {
          assert.match(String(d.status), /^5\d\d$/, c.name);
          assert.equal(d.length > 0, true, `${c.name}: a JSON body`);
        } else {
          assert.equal(
            d.complete,
            false,
            `${c.name}: the device must see a broken download, not a clean end (got ${d.status}, ${d.length} bytes)`,
          );
          // What it got is a true prefix, so a resume yields the artifact (a lying origin's own bytes excepted).
          if (!c.behaviour().corrupt && d.md5 !== md5(body.subarray(0, d.length))) lost += d.length;
        }
      }
      // The origin heals: a device resumes from what it has, another downloads whole.
      origin.behaviour = {};
      const got = Math.min(SIZE - 1, ...devices.map((d) => (d.status === 200 ? d.length : 0)));
      const resumed = await download(link, { range: `bytes=${got}-`, keep: true });
      assert.equal(resumed.status, 206, `${c.name}: resume from ${got}`);
      assert.ok(resumed.body!.equals(body.subarray(got)), `${c.name}: resumed bytes`);
      const whole = await download(link);
      assert.equal(whole.md5, md5(body), c.name);
      survived++;
    }),
  );
  assert.equal(lost, 0, "bytes a device got before a break are the artifact's own");
  // Everything published is whole.
  for (const id of await publishedIds(cachePath))
    assert.equal(md5(await fsp.readFile(path.join(cachePath, 'v1', 'objects', id))), md5(body), id);
  await Promise.all(origins.splice(0).map((o) => o.close()));
  assert.ok(alive(gw), 'gateway still running');
  assertJsonError(await request(`${base}/api/devices/v1/deployments/device/deployments/next`), 502);

  const fdAfter = await settledFds(pid, fdBefore, 20_000);
  const rssAfter = rssKiB(pid);
  assert.ok(
    fdAfter <= fdBefore + 1,
    `descriptors: ${fdBefore} before, ${fdAfter} after (${JSON.stringify(await fsp.readdir(`/proc/${pid}/fd`).then((fds) => Promise.all(fds.map((f) => fsp.readlink(`/proc/${pid}/fd/${f}`).catch(() => '?')))))})`,
  );
  assert.ok(rssAfter < rssBefore + 64 * 1024, `RSS ${rssBefore} KiB before, ${rssAfter} KiB after`);
  assertNoSecrets(gw.output(), [secret]);
  assert.match(gw.output(), /artifact fill failed|artifact origin cut, resuming/);
  recordFigures('artifact origin faults', {
    trials: CASES.length,
    faults: survived,
    inputs: CASES.length * 4,
    bytesLost: lost,
    note: `fd ${fdBefore}→${fdAfter}, RSS ${rssBefore}→${rssAfter} KiB`,
  });
});
