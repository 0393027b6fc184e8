import { test } from 'node:test';
import assert from 'node:assert/strict';
import { workerExecArgv } from '../../lib/server/workers';

// Workers start with a small V8 young generation (≤ 100 MB per serving process) unless
// the operator chose one, on the command line or in NODE_OPTIONS.

test('a worker gets --max-semi-space-size=2 when nothing chose a size', () => {
  assert.deepEqual(workerExecArgv([], undefined), ['--max-semi-space-size=2']);
  assert.deepEqual(workerExecArgv(['--enable-source-maps'], '--trace-warnings'), ['--max-semi-space-size=2', '--enable-source-maps']);
});

test("the operator's own semi-space size wins, in execArgv or NODE_OPTIONS, in either spelling", () => {
  assert.deepEqual(workerExecArgv(['--max-semi-space-size=8'], undefined), ['--max-semi-space-size=8']);
  assert.deepEqual(workerExecArgv([], '--inspect --max_semi_space_size=16'), []);
  assert.deepEqual(workerExecArgv(['--min-semi-space-size=1'], ''), ['--min-semi-space-size=1']);
});
