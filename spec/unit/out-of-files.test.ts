import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OutOfFilesAlarm, devicesServed, isOutOfFiles, parseOpenFileLimit } from '../../lib/observe/out-of-files';
import { captureLog } from '../support/capture-log';

// The open-file limit read at start, and refusals logged one line a second.

test('the open-file limit from /proc/self/limits', () => {
  const limits =
    'Limit                     Soft Limit           Hard Limit           Units\nMax cpu time              unlimited            unlimited            seconds\nMax open files            1024                 524288               files\n';
  assert.deepEqual(parseOpenFileLimit(limits), { soft: 1024, hard: 524288 });
  assert.deepEqual(parseOpenFileLimit('Max open files            unlimited            unlimited            files\n'), {
    soft: Infinity,
    hard: Infinity,
  });
  assert.equal(parseOpenFileLimit('no such line'), null);
});

test('devices served: two descriptors each after a reserve of 64', () => {
  assert.equal(devicesServed(256), 96);
  assert.equal(devicesServed(65536), 32736);
  assert.equal(devicesServed(10), 0);
});

test('EMFILE and ENFILE are recognised, also as the cause of a wrapping error', () => {
  assert.ok(isOutOfFiles(Object.assign(new Error('x'), { code: 'EMFILE' })));
  assert.ok(isOutOfFiles(new Error('fetch failed', { cause: Object.assign(new Error('y'), { code: 'ENFILE' }) })));
  assert.ok(!isOutOfFiles(Object.assign(new Error('z'), { code: 'ECONNREFUSED' })));
  assert.ok(!isOutOfFiles(undefined));
});

test('refusals: the first is logged at once, the rest counted into one line a second', () => {
  const { log, lines } = captureLog();
  let now = 10_000;
  const alarm = new OutOfFilesAlarm(log, 256, 1000, () => now);
  alarm.note('connections');
  assert.equal(lines.length, 1);
  assert.match(lines[0], /level=error msg="out of file descriptors \(open-file limit 256\): 1 connections \(EMFILE\) refused; /);
  for (let i = 0; i < 263; i++) alarm.note('connections');
  alarm.note('websocket dials', 'ENFILE');
  alarm.atLimit(256);
  assert.equal(lines.length, 1, 'nothing more within the second');
  now += 1000;
  alarm.flush();
  assert.equal(lines.length, 2);
  assert.match(
    lines[1],
    /263 connections \(EMFILE\) refused in the last 1\.0 s; 1 websocket dials \(ENFILE\) refused in the last 1\.0 s; 256 descriptors in use, new connections are being refused/,
  );
  alarm.flush();
  assert.equal(lines.length, 2, 'no line when nothing was refused');
});
