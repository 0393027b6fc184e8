import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { download, md5, publishedIds, startOrigin, tempDir, type TestOrigin } from '../integration/cache-harness';
import type { GatewayProcess } from '../support/gateway-process';
import { alive, assertNoSecrets, gatewayConfig, linkPath, newSecret, runGateway, signerFor, sleep } from './fault-harness';
import { recordFigures } from './figures';

// The cache's disk misbehaves under the real gateway process: it fills up during a fill (a small
// tmpfs mounted by the test, another writer takes the space), it turns read-only, it is deleted.
// Devices still get their artifact (streamed uncached where the disk cannot take it), the
// gateway stays up and says why in its log, nothing partial is published.

const SIZE = 2560 * 1024;
const secret = newSecret();
const signer = signerFor(secret, 'http://gateway.invalid');
let dir: string;
let mount: string;
let cachePath: string;
let body: Buffer;
let origin: TestOrigin;
let gw: GatewayProcess;
let faults = 0;
let served = 0;

before(async () => {
  dir = await tempDir('faults-disk-');
  mount = path.join(dir, 'small');
  await fsp.mkdir(mount);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m,mode=0700', 'tmpfs', mount]);
  cachePath = path.join(mount, 'cache');
  body = randomBytes(SIZE);
  origin = await startOrigin(body, { throttle: 3_000_000 });
  gw = await runGateway({ dir, name: 'disk-faults', config: gatewayConfig({ upstream: 'http://127.0.0.1:9', cachePath, secret }) });
});
after(async () => {
  await gw?.stop();
  await origin?.close();
  try {
    execFileSync('umount', ['-l', mount]);
  } catch {
    // not mounted (before() failed early)
  }
  await fsp.rm(dir, { recursive: true, force: true });
});

const link = (name: string): string => gw.url('http') + linkPath(signer, origin.url(name));

async function assertWholeOrNothing(): Promise<void> {
  for (const id of await publishedIds(cachePath).catch(() => [])) {
    assert.equal(md5(await fsp.readFile(path.join(cachePath, 'v1', 'objects', id))), md5(body), `published ${id} is whole`);
  }
}

test('the disk fills up during a fill: the device gets every byte or a break it can resume, nothing partial is published', async () => {
  const logBefore = gw.output().length;
  const first = download(link('full.mender'));
  await sleep(250);
  // Another writer takes what is left of the 4 MiB.
  const filler = path.join(mount, 'filler');
  await fsp.writeFile(filler, Buffer.alloc(4 * 1024 * 1024)).catch((err: NodeJS.ErrnoException) => assert.equal(err.code, 'ENOSPC'));
  const d = await first;
  if (d.complete) assert.equal(d.md5, md5(body), 'a clean end means every byte');
  else {
    const resumed = await download(link('full.mender'), { range: `bytes=${d.length}-`, keep: true });
    assert.ok([200, 206].includes(resumed.status));
    assert.ok(resumed.body!.equals(resumed.status === 206 ? body.subarray(d.length) : body));
  }
  // With the disk still full, a second device is served uncached.
  const second = await download(link('full.mender'));
  assert.equal(second.md5, md5(body));
  await assertWholeOrNothing();
  assert.match(gw.output().slice(logBefore), /ENOSPC|no space|uncached/i, 'the log says the disk is full');
  await fsp.rm(filler);
  const after = await download(link('full.mender'));
  assert.equal(after.md5, md5(body));
  assert.ok(alive(gw));
  faults++;
  served += 3;
  assertNoSecrets(gw.output(), [secret]);
  recordFigures('cache disk full mid-fill', { trials: 1, faults, inputs: served, bytesLost: 0, note: '4 MiB tmpfs taken by another writer during a 2.5 MiB fill' });
});

