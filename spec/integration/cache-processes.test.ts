import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { createArtifactCache } from '../../lib/cache/artifact-cache';
import { createLogger } from '../../lib/observe/log';
import { cacheConfig, download, md5, publishedIds, quietLog, startFront, startOrigin, tempDir, type TestOrigin } from './cache-harness';

// Several gateway processes on one cache path, and kill -9 at random moments: one origin
// download per artifact across processes; after any crash no partial file is ever served
// and the fill completes on demand. This file doubles as the child process (CACHE_CHILD=1).

if (process.env.CACHE_CHILD === '1') {
  void runChild();
} else {
  defineTests();
}

async function runChild(): Promise<void> {
  const cache = await createArtifactCache({
    config: cacheConfig(process.env.CACHE_PATH as string),
    log: process.env.CACHE_LOG ? createLogger({ level: 'info' }) : quietLog(),
    tuning: { staleMs: Number(process.env.STALE_MS), lockPollMs: 100 },
  });
  const front = await startFront(cache);
  process.stdout.write(`${JSON.stringify({ base: front.url(new URL('http://x/')).split('?')[0] })}\n`);
  process.on(
    'SIGTERM',
    () =>
      void cache
        .close()
        .then(() => front.close())
        .then(() => process.exit(0)),
  );
}

interface Child {
  proc: ChildProcess;
  link(origin: URL): string;
}

function defineTests(): void {
  const SIZE = 1536 * 1024;
  let dir: string;
  let body: Buffer;
  let origin: TestOrigin;
  const children = new Set<ChildProcess>();

  before(async () => {
    dir = await tempDir('cache-procs-');
    body = randomBytes(SIZE);
    origin = await startOrigin(body, { throttle: 2_000_000 });
  });
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await origin.close();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  async function startChild(cachePath: string): Promise<Child> {
    const proc = spawn(process.execPath, [__filename], {
      env: { ...process.env, CACHE_CHILD: '1', CACHE_PATH: cachePath, STALE_MS: '3000' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.add(proc);
    proc.on('exit', () => children.delete(proc));
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: proc.stdout! }).once('line', resolve);
      proc.once('exit', (code) => reject(new Error(`cache child exited with ${code}`)));
    });
    const { base } = JSON.parse(line) as { base: string };
    return { proc, link: (o) => `${base}?o=${encodeURIComponent(o.href)}` };
  }

  async function kill9(c: Child): Promise<void> {
    if (c.proc.exitCode !== null || c.proc.signalCode !== null) return;
    const exited = new Promise((r) => c.proc.once('exit', r));
    c.proc.kill('SIGKILL');
    await exited;
  }

  /** Every published entry on disk is complete and byte-identical. */
  async function assertOnlyCompleteEntries(cachePath: string): Promise<number> {
    const ids = await publishedIds(cachePath);
    for (const id of ids) {
      const bytes = await fsp.readFile(path.join(cachePath, 'v1', 'objects', id));
      assert.equal(md5(bytes), md5(body), `published entry ${id} is complete`);
    }
    return ids.length;
  }

  test('two gateway processes on one cache path: one origin download', async () => {
    const cachePath = path.join(dir, 'two');
    const [a, b] = await Promise.all([startChild(cachePath), startChild(cachePath)]);
    const before = origin.requests.length;
    const name = 'shared.mender';
    const downloads = [];
    for (let i = 0; i < 10; i++) downloads.push(download(a.link(origin.url(name))), download(b.link(origin.url(name))));
    const results = await Promise.all(downloads);
    for (const d of results) {
      assert.equal(d.status, 200);
      assert.equal(d.md5, md5(body));
    }
    assert.equal(origin.requests.length - before, 1);
    await Promise.all([kill9(a), kill9(b)]);
  });

  test('kill -9 of a gateway mid-fill, 20 times at random moments: nothing partial is served, fills complete on demand', async () => {
    const cachePath = path.join(dir, 'kill');
    const names: string[] = [];
    for (let i = 0; i < 20; i++) {
      const child = await startChild(cachePath);
      const name = `victim-${i}.mender`;
      names.push(name);
      // A device that saw a clean end must have every byte right; a broken one is fine.
      const devices = [name, names[Math.floor(Math.random() * names.length)]].map((n) =>
        download(child.link(origin.url(n))).catch(() => null),
      );
      await new Promise((r) => setTimeout(r, 30 + Math.random() * 900));
      await kill9(child);
      for (const d of await Promise.all(devices)) {
        if (d?.complete && d.status === 200) assert.equal(d.md5, md5(body));
      }
      await assertOnlyCompleteEntries(cachePath);
    }
    // A fresh instance: what the dead left in tmp/ is gone, and every artifact completes on demand.
    const fresh = await startChild(cachePath);
    const leftovers = (await fsp.readdir(path.join(cachePath, 'v1', 'tmp'))).filter((n) => !n.includes(`.${fresh.proc.pid}.`));
    assert.deepEqual(leftovers, []);
    const results = await Promise.all(names.map((n) => download(fresh.link(origin.url(n)))));
    for (const d of results) {
      assert.equal(d.status, 200);
      assert.ok(d.complete);
      assert.equal(d.md5, md5(body));
    }
    assert.equal(await assertOnlyCompleteEntries(cachePath), names.length);
    await kill9(fresh);
  });

  test('an in-process instance adopts entries another process published', async () => {
    const cachePath = path.join(dir, 'two');
    const cache = await createArtifactCache({ config: cacheConfig(cachePath), log: quietLog() });
    const front = await startFront(cache);
    try {
      const before = origin.requests.length;
      const d = await download(front.url(origin.url('shared.mender')));
      assert.equal(d.md5, md5(body));
      assert.equal(origin.requests.length, before);
    } finally {
      await cache.close();
      await front.close();
    }
  });
}
