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
  assert.doesNotMatch(all[2], /request_id/, "the summary is not one request's line");
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

test("the summary keeps what the repeats share, and the gateway's close writes what is pending", () => {
  let now = 0;
  const lines = new RepeatedLines(60_000, () => now);
  const { log, lines: out } = captureLog('debug');
  const fields = (i: number) => ({
    request_id: `r${i}`,
    code: 'UPSTREAM_UNREACHABLE',
    status: 502,
    cause: 'connect ECONNREFUSED 127.0.0.1:1',
  });
  // As a request's logger does, which adds its request_id to every line.
  for (let i = 0; i < 5; i++) lines.error(log.child({ request_id: `r${i}` }), 'upstream server unreachable', fields(i));
  assert.match(out[0]!, /request_id=r0/, "the first line is the request's own");
  now = 20_000; // shutdown well inside the window
  lines.flush(true);
  assert.equal(out.length, 2, out.join('\n'));
  assert.match(out[1]!, /upstream server unreachable \(4 more in the last 20 s; each is in the access log\)/);
  assert.match(out[1]!, /code=UPSTREAM_UNREACHABLE status=502 cause="connect ECONNREFUSED 127.0.0.1:1" repeated=4/);
  assert.doesNotMatch(out[1]!, /request_id/);
  // Nothing left to say later, and the window is gone: the next one is logged at once.
  now = 120_000;
  lines.flush();
  assert.equal(out.length, 2);
  lines.error(log, 'upstream server unreachable', fields(9));
  assert.equal(out.length, 3);
});
