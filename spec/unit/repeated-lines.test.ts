import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RepeatedLines } from '../../lib/observe/repeated-lines';
import { captureLog } from '../support/capture-log';

test('the same error line within the window is counted into one line when it closes', () => {
  let now = 0;
  const lines = new RepeatedLines(60_000, () => now);
  const { log, lines: out } = captureLog('debug');
  for (let i = 0; i < 500; i++) lines.error(log, 'upstream server unreachable: ECONNREFUSED', { request_id: `r${i}` });
  lines.error(log, 'Mender server (management API) unreachable: ECONNREFUSED', {});
  assert.equal(out.length, 2, 'one line per message while the window is open');
  now = 30_000;
  lines.flush();
  assert.equal(out.length, 2, 'nothing before the window closes');
  now = 60_000;
  lines.flush();
  const all = out;
  assert.equal(all.length, 3, all.join('\n'));
  assert.match(all[2], /upstream server unreachable: ECONNREFUSED \(499 more in the last 60 s; each is in the access log\)/);
  assert.match(all[2], /repeated=499/);
  // The window is closed: the next one is logged at once again.
  lines.error(log, 'upstream server unreachable: ECONNREFUSED', {});
  assert.equal(out.length, 4);
});

test('a message seen once in its window gets no summary line', () => {
  let now = 0;
  const lines = new RepeatedLines(1000, () => now);
  const { log, lines: out } = captureLog('debug');
  lines.error(log, 'internal error', {});
  now = 5000;
  lines.flush();
  assert.equal(out.length, 1);
});

test('more kinds than it counts are logged as they come, never dropped', () => {
  const lines = new RepeatedLines(60_000, () => 0);
  const { log, lines: out } = captureLog('debug');
  for (let i = 0; i < 200; i++) lines.error(log, `distinct failure ${i}`, {});
  assert.equal(out.length, 200);
});
