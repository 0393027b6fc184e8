import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { cacheKey, entryId } from '../../lib/cache/store/cache-key';
import { download, md5, startOrigin, tempDir, waitFor, type TestOrigin } from '../integration/cache-harness';
import type { GatewayProcess } from '../support/gateway-process';
import {
  alive,
  assertNoSecrets,
  fdCount,
  gatewayConfig,
  linkPath,
  newSecret,
  runGateway,
  settledFds,
  signerFor,
  sleep,
} from './fault-harness';
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

const idOf = (name: string): string => entryId(cacheKey(origin.url(name)));
const layoutDir = (sub: 'objects' | 'tmp' | 'partial'): string => path.join(cachePath, 'v1', sub);
const exists = (file: string): Promise<boolean> =>
  fsp.access(file).then(
    () => true,
    () => false,
  );

/** The cache as `cache list` would see it, listed strictly (a listing that fails fails the test):
 * every published entry (a sidecar, the commit point) names the whole artifact, and once the
 * fills have ended no temporary file of theirs is left. Returns the published ids. */
async function assertWholeOrNothing(): Promise<string[]> {
  const names = await fsp.readdir(layoutDir('objects'));
  const ids = names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5));
  for (const id of ids) {
    const sidecar = JSON.parse(await fsp.readFile(path.join(layoutDir('objects'), `${id}.json`), 'utf8')) as { size: number; md5: string };
    const bytes = await fsp.readFile(path.join(layoutDir('objects'), id));
    assert.equal(bytes.length, SIZE, `published ${id} has every byte`);
    assert.equal(md5(bytes), md5(body), `published ${id} is the artifact`);
    assert.deepEqual([sidecar.size, sidecar.md5], [SIZE, md5(body)], `the sidecar of ${id} describes it`);
  }
  await waitFor(async () => (await fsp.readdir(layoutDir('tmp'))).length === 0, 10_000, 'the fills to remove their temporary files');
  return ids;
}

/** A device download that broke off (a fill the disk failed): the device got a 200 whose bytes are
 * the artifact's first ones, never all of them; the artifact is not published, no temporary file
 * and no partial file is left for it (docs/cache.md: a partial file is kept only when the process
 * closes), and the device's resume with `Range` gets the rest. */
async function assertBrokenOff(name: string, d: { status: number; length: number; complete: boolean; body?: Buffer }): Promise<void> {
  assert.equal(d.status, 200);
  assert.ok(!d.complete && d.length < SIZE, `${name}: cut after ${d.length} of ${SIZE} bytes`);
  assert.ok(d.body!.equals(body.subarray(0, d.length)), `${name}: the bytes before the cut are the artifact's`);
  const id = idOf(name);
  assert.equal(await exists(path.join(layoutDir('objects'), `${id}.json`)), false, `${name} is not published`);
  assert.equal(await exists(path.join(layoutDir('partial'), id)), false, `${name} left no partial file`);
  await waitFor(
    async () => !(await fsp.readdir(layoutDir('tmp')).catch(() => [] as string[])).some((n) => n.startsWith(id)),
    10_000,
    `the failed fill of ${name} to remove its temporary file`,
  );
  const resumed = await download(link(name), { range: `bytes=${d.length}-`, keep: true });
  assert.ok([200, 206].includes(resumed.status), `${name}: resumed with ${resumed.status}`);
  assert.ok(resumed.body!.equals(resumed.status === 206 ? body.subarray(d.length) : body), `${name}: the resume gets the rest`);
}

test('the disk fills up during a fill: the device gets every byte or a break it can resume, nothing partial is published', async () => {
  const logBefore = gw.output().length;
  const first = download(link('full.mender'), { keep: true });
  await sleep(250);
  // Another writer takes what is left of the 4 MiB.
  const filler = path.join(mount, 'filler');
  await fsp.writeFile(filler, Buffer.alloc(4 * 1024 * 1024)).catch((err: NodeJS.ErrnoException) => assert.equal(err.code, 'ENOSPC'));
  const d = await first;
  if (d.complete) assert.equal(d.md5, md5(body), 'a clean end means every byte');
  else await assertBrokenOff('full.mender', d);
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
});

test('the cache directory turns read-only: artifacts are streamed uncached, the log says why', async () => {
  const logBefore = gw.output().length;
  execFileSync('mount', ['-o', 'remount,ro', mount]);
  try {
    const results = await Promise.all([download(link('ro.mender')), download(link('ro.mender')), download(link('full.mender'))]);
    for (const d of results) {
      assert.equal(d.status, 200);
      assert.ok(d.complete);
      assert.equal(d.md5, md5(body));
    }
    assert.match(gw.output().slice(logBefore), /EROFS|read-only|uncached/i);
  } finally {
    execFileSync('mount', ['-o', 'remount,rw', mount]);
  }
  await assertWholeOrNothing();
  const healed = await download(link('ro.mender'));
  assert.equal(healed.md5, md5(body));
  assert.ok(alive(gw));
  faults++;
  served += 4;
});

test('the cache directory is deleted under the running gateway: no crash, devices served, the log says why', async () => {
  const pid = gw.process.pid!;
  const fdBefore = fdCount(pid);
  const logBefore = gw.output().length;
  await fsp.rm(cachePath, { recursive: true, force: true });
  const results = await Promise.all(['gone.mender', 'ro.mender', 'full.mender'].map((n) => download(link(n), { keep: true })));
  await sleep(3000);
  results.push(await download(link('gone-later.mender'), { keep: true }));
  assert.deepEqual(
    results.map((d) => d.status),
    [200, 200, 200, 200],
    'statuses right after the deletion and 3 s later',
  );
  const names = ['gone.mender', 'ro.mender', 'full.mender', 'gone-later.mender'];
  for (const [i, d] of results.entries()) {
    assert.equal(d.status, 200);
    // A fill racing the deletion may break a download: it must be a break the device retries
    // from, never a clean short body, and the retry gets every byte.
    if (d.complete) assert.equal(d.md5, md5(body));
    else await assertBrokenOff(names[i]!, d);
  }
  assert.ok(results.at(-1)!.complete, 'once the layout is made again, downloads complete');
  // Deleted mid-fill as well.
  const mid = download(link('gone-mid.mender'), { keep: true });
  await sleep(300);
  await fsp.rm(cachePath, { recursive: true, force: true });
  const m = await mid;
  if (m.complete) assert.equal(m.md5, md5(body));
  else await assertBrokenOff('gone-mid.mender', m);
  const again = await download(link('gone-mid.mender'));
  assert.equal(again.md5, md5(body));
  assert.ok(alive(gw));
  assert.match(gw.output().slice(logBefore), /level=(warn|error)/, 'the log says something went wrong');
  await assertWholeOrNothing();
  const fdAfter = await settledFds(pid, fdBefore, 15_000);
  assert.ok(fdAfter <= fdBefore + 1, `descriptors: ${fdBefore} before, ${fdAfter} after`);
  assertNoSecrets(gw.output(), [secret]);
  faults += 2;
  served += 5;
  recordFigures('cache disk faults', {
    trials: 3,
    faults,
    inputs: served,
    bytesLost: 0,
    note: 'full mid-fill, read-only, deleted idle and mid-fill',
  });
});
