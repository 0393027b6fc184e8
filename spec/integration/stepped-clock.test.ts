// The stepped clock (spec/support/stepped-clock.ts) does what the clock-step tests and the soak
// rely on: a Node 24 child under libfaketime starts and answers (no hang), its Date.now() follows
// each step forward and back, and its monotonic clock (performance.now(), timers) does not.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { steppedClock } from '../support/stepped-clock';

// The child answers each line on stdin with its wall and monotonic clocks and the time a 200 ms
// timer took by the monotonic clock.
const CHILD = `
const { createInterface } = require('node:readline');
createInterface({ input: process.stdin }).on('line', () => {
  const start = performance.now();
  setTimeout(() => console.log(JSON.stringify({ wall: Date.now(), mono: performance.now(), timer: performance.now() - start })), 200);
});
console.log(JSON.stringify({ wall: Date.now(), mono: performance.now(), timer: 0 }));
`;

for (const cacheSeconds of [0, 1]) {
  test(`a child's wall clock follows each step, its monotonic clock does not (cache ${cacheSeconds} s)`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stepped-clock-'));
    const clock = steppedClock(dir, { cacheSeconds });
    const child = spawn(process.execPath, ['-e', CHILD], { env: { ...process.env, ...clock.env }, stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const read = async () => JSON.parse(((await lines.next()).value as string) ?? 'null') as { wall: number; mono: number; timer: number };
    const ask = async () => {
      child.stdin!.write('\n');
      return read();
    };
    try {
      const first = await read();
      assert.ok(Math.abs(first.wall - Date.now()) < 2000, 'no offset before the first step');
      await clock.step(86_400);
      const ahead = await ask();
      assert.ok(Math.abs(ahead.wall - clock.now()) < 2000, `a day ahead: ${new Date(ahead.wall).toISOString()}`);
      assert.ok(ahead.wall - first.wall > 86_400_000 - 1000);
      assert.ok(ahead.mono - first.mono < 60_000, 'the monotonic clock did not jump');
      assert.ok(ahead.timer >= 190 && ahead.timer < 5000, `a 200 ms timer took ${ahead.timer} ms`);
      await clock.step(-2 * 86_400);
      const behind = await ask();
      assert.ok(Math.abs(behind.wall - (Date.now() - 86_400_000)) < 2000, `a day behind: ${new Date(behind.wall).toISOString()}`);
      assert.ok(behind.mono > ahead.mono, 'the monotonic clock kept going forward');
      assert.ok(behind.timer >= 190 && behind.timer < 5000, `a 200 ms timer took ${behind.timer} ms`);
      assert.equal(clock.offsetSeconds, -86_400);
      await clock.reset();
      const back = await ask();
      assert.ok(Math.abs(back.wall - Date.now()) < 2000, 'back on the real time');
    } finally {
      child.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
