import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, mkdir, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheLayout, fillsDir, ownerTag } from '../../lib/cache/store/cache-layout';
import { UplinkCap } from '../../lib/cache/fill/uplink-cap';
import { createLogger } from '../../lib/observe/log';

// ArtifactsCache.FillRateLimit: the token bucket of one fill, and the cap
// divided among the fills registered on the path, whichever process runs them.

const quiet = createLogger({ level: 'fatal', sink: { write: () => true } });

async function withLayout(fn: (layout: ReturnType<typeof cacheLayout>) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'uplink-cap-'));
  try {
    await fn(cacheLayout(dir));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Take `total` bytes in `chunk`-sized pieces; elapsed ms. */
async function timeTaking(take: (n: number) => Promise<void>, total: number, chunk: number): Promise<number> {
  const t0 = performance.now();
  for (let sent = 0; sent < total; sent += chunk) await take(Math.min(chunk, total - sent));
  return performance.now() - t0;
}

test('one fill: chunks are delayed so the average is the cap, with no burst at the start', async () => {
  await withLayout(async (layout) => {
    const cap = new UplinkCap({ layout, bytesPerSecond: 1_000_000, log: quiet });
    const share = await cap.register();
    assert.equal(share.rate, 1_000_000);
    // 600 kB in 16 KiB chunks at 1 MB/s (the bucket starts empty: a joining fill does not overshoot).
    const ms = await timeTaking((n) => share.take(n), 600_000, 16 * 1024);
    assert.ok(ms > 600 * 0.95 && ms < 600 * 1.15, `600 kB in ${ms.toFixed(0)} ms, expected ~600`);
    // After idling, a burst of 100 ms worth goes at once, no more.
    await new Promise((r) => setTimeout(r, 300));
    const burst = await timeTaking((n) => share.take(n), 100_000, 10_000);
    assert.ok(burst < 30, `the 100 kB burst took ${burst.toFixed(0)} ms`);
    const after = await timeTaking((n) => share.take(n), 200_000, 10_000);
    assert.ok(after > 200 * 0.9 && after < 200 * 1.2, `200 kB after the burst in ${after.toFixed(0)} ms, expected ~200`);
    await share.close();
  });
});

test('chunks larger than the burst at a low cap: the wait is split so the average is right', async () => {
  await withLayout(async (layout) => {
    const cap = new UplinkCap({ layout, bytesPerSecond: 100_000, log: quiet });
    const share = await cap.register();
    // 64 KiB chunks (the socket's reads) at 100 kB/s: each waits off its debt.
    const ms = await timeTaking((n) => share.take(n), 2 * 65536, 65536);
    const expected = ((2 * 65536) / 100_000) * 1000;
    assert.ok(ms > expected * 0.95 && ms < expected * 1.1, `${ms.toFixed(0)} ms, expected ~${expected.toFixed(0)}`);
    await share.close();
  });
});

test('a wait ends when the fill is aborted', async () => {
  await withLayout(async (layout) => {
    const cap = new UplinkCap({ layout, bytesPerSecond: 1000, log: quiet });
    const share = await cap.register();
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('closing')), 50);
    await assert.rejects(share.take(100_000, ac.signal));
    await share.close();
  });
});

test('the cap is re-divided as fills of other processes join and leave', async () => {
  await withLayout(async (layout) => {
    // Two instances on one path stand for two processes (workers, a prewarm CLI).
    const a = new UplinkCap({ layout, bytesPerSecond: 900_000, log: quiet, refreshMs: 50 });
    const b = new UplinkCap({ layout, bytesPerSecond: 900_000, log: quiet, refreshMs: 50 });
    const a1 = await a.register();
    assert.equal(a1.rate, 900_000);
    const b1 = await b.register();
    assert.equal(b1.rate, 450_000, 'a joining fill sees the others at once');
    await a.tick();
    assert.equal(a1.rate, 450_000);
    const a2 = await a.register();
    assert.equal(a2.rate, 300_000);
    await b.tick();
    assert.equal(b1.rate, 300_000);
    assert.equal((await readdir(fillsDir(layout))).length, 3);

    await b1.close();
    await a.tick();
    assert.equal(a1.rate, 450_000);
    assert.equal(a2.rate, 450_000);
    // The timer re-divides without anyone asking.
    await a2.close();
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(a1.rate, 900_000);
    await a1.close();
    assert.deepEqual(await readdir(fillsDir(layout)), [], 'closed fills leave no registration');
  });
});

test("a dead process's registration, or one nobody refreshed, is ignored and removed", async () => {
  await withLayout(async (layout) => {
    await mkdir(fillsDir(layout), { recursive: true });
    const host = ownerTag().split('.')[0];
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    const deadFile = `${host}.${dead}.aaaaaaaaaaaa`;
    await writeFile(join(fillsDir(layout), deadFile), '');
    // Alive (this very process) but not refreshed for 10 s: a hung or partitioned gateway.
    const staleFile = `${ownerTag()}.bbbbbbbbbbbb`;
    await writeFile(join(fillsDir(layout), staleFile), '');
    const old = new Date(Date.now() - 10_000);
    await utimes(join(fillsDir(layout), staleFile), old, old);
    // Another host's fill, refreshed lately: counted (a shared cache path).
    const otherHost = `some-other-host.4242.cccccccccccc`;
    await writeFile(join(fillsDir(layout), otherHost), '');

    const cap = new UplinkCap({ layout, bytesPerSecond: 1_000_000, log: quiet });
    const share = await cap.register();
    assert.equal(share.rate, 500_000, 'ours and the other host');
    const left = await readdir(fillsDir(layout));
    assert.ok(!left.includes(deadFile), 'dead process removed');
    assert.ok(!left.includes(staleFile), 'stale registration removed');
    assert.ok(left.includes(otherHost));
    await share.close();
  });
});

test('a cache directory that cannot hold registrations: the cap is shared by this process alone', async () => {
  await withLayout(async (layout) => {
    await mkdir(layout.root, { recursive: true });
    await writeFile(fillsDir(layout), 'not a directory');
    const warnings: string[] = [];
    const log = createLogger({ level: 'warn', sink: { write: (line: string) => warnings.push(line) > 0 } });
    const cap = new UplinkCap({ layout, bytesPerSecond: 1_000_000, log });
    const s1 = await cap.register();
    const s2 = await cap.register();
    assert.equal(s1.rate, 500_000);
    assert.equal(s2.rate, 500_000);
    assert.equal(warnings.length, 1, warnings.join(''));
    await s1.close();
    await s2.close();
  });
});

test('a fill joining in another process is seen at once (inotify), not at the next count', async () => {
  await withLayout(async (layout) => {
    const a = new UplinkCap({ layout, bytesPerSecond: 800_000, log: quiet, refreshMs: 60_000 });
    const b = new UplinkCap({ layout, bytesPerSecond: 800_000, log: quiet, refreshMs: 60_000 });
    const a1 = await a.register();
    const b1 = await b.register();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(a1.rate, 400_000);
    await b1.close();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(a1.rate, 800_000);
    await a1.close();
  });
});
