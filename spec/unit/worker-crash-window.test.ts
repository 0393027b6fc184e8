import assert from 'node:assert/strict';
import cluster from 'node:cluster';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, mock, test } from 'node:test';
import { runPrimary } from '../../lib/server/workers';
import { captureLog } from '../support/capture-log';

// The cluster primary stops when workers keep dying right after their start, and replaces a
// worker that lived. How long a worker lived is counted on the monotonic clock (the test's own),
// whatever NTP does to the wall clock (Date.now() stepped a minute at each read).

let dir: string;
let script: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'worker-crash-window-'));
  script = join(dir, 'worker.cjs');
  // Serves, then dies (exit 3) a moment later; drains at once when told to.
  writeFileSync(
    script,
    "process.on('message', (m) => { if (m && m.type === 'shutdown') process.exit(0); });\n" +
      "process.send({ type: 'ready' });\n" +
      'setTimeout(() => process.exit(3), 100);\n',
  );
  cluster.setupPrimary({ exec: script, silent: true });
});
after(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => mock.restoreAll());

/** Date.now() moves `stepMs` more at each read (a clock NTP keeps stepping). */
function steppingWallClock(stepMs: number): void {
  const real = Date.now.bind(Date);
  let steps = 0;
  mock.method(Date, 'now', () => real() + stepMs * steps++);
}

/** Runs the primary with one worker; stops it once `limit` workers were forked (a crash loop it did not stop). */
async function run(clock: () => number, limit: number): Promise<{ code: number; forks: number; log: string }> {
  const captured = captureLog('info');
  let forks = 0;
  const onFork = (): void => {
    if (++forks === limit) setImmediate(() => process.emit('SIGTERM'));
  };
  cluster.on('fork', onFork);
  try {
    const code = await runPrimary({ count: 1, log: captured.log, drainMs: 5_000, clock });
    return { code, forks, log: captured.text() };
  } finally {
    cluster.off('fork', onFork);
  }
}

test('workers dying right after start stop the primary, though the wall clock steps a minute forward between', async () => {
  steppingWallClock(60_000);
  let t = 0;
  const result = await run(() => (t += 1), 8);
  assert.match(result.log, /workers keep dying right after start: stopping/, result.log);
  assert.equal(result.code, 1);
  assert.equal(result.forks, 5, 'the first worker and four replacements');
});

test('workers that lived are replaced, though the wall clock steps a minute back between', async () => {
  steppingWallClock(-60_000);
  let t = 0;
  const result = await run(() => (t += 10_000), 7);
  assert.doesNotMatch(result.log, /keep dying/, result.log);
  assert.equal(result.forks, 7);
  assert.equal(result.log.match(/worker died: starting a replacement/g)?.length ?? 0, 6, result.log);
});
