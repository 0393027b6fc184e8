import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { FallWatch, loadMallocTrim, watchMemoryReturn } from '../../lib/server/memory-return';
import { captureLog } from '../support/capture-log';

// Memory given back after a spike: malloc_trim after a fall in open connections, skipped where
// there is none.

test('a trim follows a fall of at least `fall` connections, once it stopped falling fast', () => {
  const watch = new FallWatch(100);
  const decisions = [0, 500, 1000, 950, 400, 120, 110, 110, 30].map((n) => watch.count(n));
  // 1000 → 950: not enough; → 400 and → 120: still falling fast; → 110: settled, 890 below the highest.
  assert.deepEqual(decisions, [false, false, false, false, false, false, true, false, false]);
  // The highest starts again from the trim: 110 → 30 is under `fall`; climbing and leaving again trims again.
  assert.deepEqual(
    [300, 250, 150, 140].map((n) => watch.count(n)),
    [false, false, false, true],
  );
});

test('no trim while the count only rises or wobbles', () => {
  const watch = new FallWatch(100);
  for (const n of [10, 200, 180, 400, 350, 600, 520, 700]) assert.equal(watch.count(n), false, String(n));
});

test('without koffi (or on musl) there is no malloc_trim, and loading it does not throw', () => {
  assert.equal(
    loadMallocTrim({}, () => {
      throw Object.assign(new Error("Cannot find module 'koffi'"), { code: 'MODULE_NOT_FOUND' });
    }),
    null,
  );
});

test('with another malloc preloaded there is nothing to trim: koffi is not even loaded', () => {
  let loaded = 0;
  const load = () => {
    loaded++;
    return {};
  };
  for (const preload of ['/usr/lib/x86_64-linux-gnu/libjemalloc.so.2', '/usr/lib/libmimalloc.so.2:/lib/other.so'])
    assert.equal(loadMallocTrim({ LD_PRELOAD: preload }, load), null, preload);
  assert.equal(loaded, 0);
});

test('on glibc the installed koffi gives malloc_trim, and calling it returns 0 or 1', () => {
  const glibc = (process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header.glibcVersionRuntime;
  const trim = loadMallocTrim({});
  if (glibc) {
    assert.ok(trim, `glibc ${glibc}: koffi should load`);
    assert.ok([0, 1].includes(trim()));
  } else assert.equal(trim, null);
});

async function listening(): Promise<Server> {
  const server = createServer((s) => s.on('error', () => undefined));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

async function connectMany(server: Server, n: number): Promise<Socket[]> {
  const port = (server.address() as { port: number }).port;
  return Promise.all(
    Array.from({ length: n }, async () => {
      const s = connect(port, '127.0.0.1');
      await once(s, 'connect');
      return s;
    }),
  );
}

const until = async (ok: () => boolean, ms = 3000) => {
  for (const end = Date.now() + ms; !ok() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
};

test("the watch counts the listeners' connections and trims after they closed, then once more", async () => {
  const server = await listening();
  const { log, lines } = captureLog();
  let trims = 0;
  const trim = () => {
    trims++;
    return 1;
  };
  const stop = watchMemoryReturn([server], log, trim, { fall: 5, everyMs: 20 });
  try {
    const sockets = await connectMany(server, 8);
    await until(() => false, 100); // counted at 8 a few times
    assert.equal(trims, 0);
    for (const s of sockets) s.destroy();
    await until(() => trims > 0);
    assert.equal(trims, 1);
    await until(() => false, 150);
    assert.equal(trims, 2, 'a fall: one trim and one more at the next count, no more');
    assert.match(lines[0], /level=info msg="returned freed memory to the system after connections closed" connections=0 pass=1 /);
    assert.match(lines[1], /connections=0 pass=2 /);
  } finally {
    stop();
    server.close();
  }
});

test('a trim that throws is one warning and the watch off, never an unhandled rejection', async () => {
  const server = await listening();
  const { log, lines } = captureLog('warn');
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => rejections.push(reason);
  process.on('unhandledRejection', onRejection);
  let trims = 0;
  const trim = () => {
    trims++;
    throw new Error('koffi: symbol malloc_trim not found');
  };
  const stop = watchMemoryReturn([server], log, trim, { fall: 1, everyMs: 10 });
  try {
    for (let round = 0; round < 2; round++) {
      const sockets = await connectMany(server, 3);
      await until(() => false, 50);
      for (const s of sockets) s.destroy();
      await until(() => false, 100);
    }
    assert.equal(trims, 1, 'off after the first failure');
    assert.deepEqual(rejections, []);
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /level=warning msg="memory return after a fall in connections: failed, turned off" .*malloc_trim not found/);
  } finally {
    process.off('unhandledRejection', onRejection);
    stop();
    server.close();
  }
});

test('without malloc_trim the watch does nothing and says so at debug', async () => {
  const server = await listening();
  const { log, lines } = captureLog('debug');
  const stop = watchMemoryReturn([server], log, null, { fall: 1, everyMs: 10 });
  try {
    const sockets = await connectMany(server, 3);
    for (const s of sockets) s.destroy();
    await until(() => false, 100);
    assert.deepEqual(lines.length, 1);
    assert.match(lines[0], /memory return after a fall in connections: off/);
  } finally {
    stop();
    server.close();
  }
});
