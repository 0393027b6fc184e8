import { test } from 'node:test';
import assert from 'node:assert/strict';
import { workerExecArgv } from '../../lib/server/workers';
import { restartArgs } from '../../lib/server/young-generation';

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

// A single process or cluster primary started without a size starts again with one (same pid).
const serving = { argv: ['--config', 'g.conf'], execArgv: [], nodeOptions: undefined, isPrimary: true, canExec: true, isSea: false };

test('a serving process started without a size starts again with --max-semi-space-size=2, its own flags and arguments kept', () => {
  assert.deepEqual(restartArgs(serving, '/opt/bin/gateway.js'), ['--max-semi-space-size=2', '/opt/bin/gateway.js', '--config', 'g.conf']);
  assert.deepEqual(restartArgs({ ...serving, execArgv: ['--enable-source-maps'] }, 'g.js'), [
    '--max-semi-space-size=2',
    '--enable-source-maps',
    'g.js',
    '--config',
    'g.conf',
  ]);
});

test('no second start: a size chosen, a worker, no process.execve, a single executable, or a command that serves nothing', () => {
  assert.equal(restartArgs({ ...serving, execArgv: ['--max-semi-space-size=2'] }, 'g.js'), null);
  assert.equal(restartArgs({ ...serving, nodeOptions: '--max_semi_space_size=8' }, 'g.js'), null);
  assert.equal(restartArgs({ ...serving, isPrimary: false }, 'g.js'), null);
  assert.equal(restartArgs({ ...serving, canExec: false }, 'g.js'), null);
  assert.equal(restartArgs({ ...serving, isSea: true }, 'g.js'), null);
  for (const argv of [['--version'], ['-h'], ['--help'], ['-t'], ['--check-config'], ['check-config'], ['cache', 'list']])
    assert.equal(restartArgs({ ...serving, argv }, 'g.js'), null, argv.join(' '));
});
