import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planResponse } from '../../lib/cache/serve/response-plan';
import { checkResponse, NoContentLength, OriginRefused, parseContentRange } from '../../lib/cache/fill/resumable-download';
import { originRange } from '../../lib/cache/serve/serve-uncached';
import { FillProgress } from '../../lib/cache/fill/fill-progress';
import { SingleFlight } from '../../lib/cache/fill/single-flight';

test('planResponse: 200, 206 and 416 with exact lengths', () => {
  const cases: { range?: string; status: number; length?: number; cr?: string; start?: number; end?: number }[] = [
    { status: 200, length: 1000, start: 0, end: 1000 },
    { range: 'bytes=0-', status: 206, length: 1000, cr: 'bytes 0-999/1000', start: 0, end: 1000 },
    { range: 'bytes=100-199', status: 206, length: 100, cr: 'bytes 100-199/1000', start: 100, end: 200 },
    { range: 'bytes=900-5000', status: 206, length: 100, cr: 'bytes 900-999/1000', start: 900, end: 1000 },
    { range: 'bytes=-10', status: 206, length: 10, cr: 'bytes 990-999/1000', start: 990, end: 1000 },
    { range: 'bytes=1000-', status: 416, cr: 'bytes */1000' },
    { range: 'bytes=zz', status: 200, length: 1000, start: 0, end: 1000 },
    { range: 'bytes=0-1,5-6', status: 200, length: 1000, start: 0, end: 1000 },
  ];
  for (const c of cases) {
    const plan = planResponse(c.range, 1000, '"e"');
    assert.equal(plan.status, c.status, String(c.range));
    if (plan.status === 416) {
      assert.equal(plan.headers['Content-Range'], c.cr);
      continue;
    }
    assert.equal(plan.headers['Content-Length'], c.length, String(c.range));
    assert.equal(plan.headers['Content-Range'], c.cr, String(c.range));
    assert.equal(plan.headers.ETag, '"e"');
    assert.equal(plan.headers['Content-Encoding'], undefined);
    assert.deepEqual([plan.start, plan.end], [c.start, c.end], String(c.range));
  }
});

test('checkResponse: first answer needs 200 and a length; a resume must match exactly', () => {
  const ok = { status: 200, headers: {}, contentLength: 10, etag: '"a"' };
  assert.doesNotThrow(() => checkResponse(ok, 0, null));
  assert.throws(() => checkResponse({ ...ok, contentLength: null }, 0, null), NoContentLength);
  assert.throws(
    () => checkResponse({ ...ok, status: 404 }, 0, null),
    (e: OriginRefused) => e instanceof OriginRefused && e.code === 'NOT_FOUND',
  );
  assert.throws(() => checkResponse({ ...ok, status: 403 }, 0, null), OriginRefused);
  assert.throws(
    () => checkResponse({ ...ok, status: 503 }, 0, null),
    (e: Error) => !(e instanceof OriginRefused),
  );
  const expected = { size: 10, etag: '"a"' };
  const resume = (cr: string, extra = {}) => ({
    status: 206,
    headers: { 'content-range': cr },
    contentLength: null,
    etag: '"a"',
    ...extra,
  });
  assert.doesNotThrow(() => checkResponse(resume('bytes 4-9/10'), 4, expected));
  assert.throws(() => checkResponse(resume('bytes 3-9/10'), 4, expected), OriginRefused);
  assert.throws(() => checkResponse(resume('bytes 4-9/11'), 4, expected), OriginRefused);
  assert.throws(() => checkResponse(resume('bytes 4-9/10', { etag: '"b"' }), 4, expected), /ETag/);
  assert.throws(() => checkResponse(resume('bytes 4-9/10', { status: 200 }), 4, expected), OriginRefused);
  assert.throws(() => checkResponse(resume('bytes */10', { status: 416 }), 4, expected), OriginRefused);
  assert.throws(
    () => checkResponse(resume('bytes 4-9/10', { status: 502 }), 4, expected),
    (e: Error) => !(e instanceof OriginRefused),
  );
});

test('parseContentRange and originRange', () => {
  assert.deepEqual(parseContentRange('bytes 0-9/10'), { start: 0, end: 9, size: 10 });
  for (const bad of [undefined, 'bytes 5-4/10', 'bytes 0-10/10', 'bytes */10', 'items 0-1/2'])
    assert.equal(parseContentRange(bad), null, String(bad));
  assert.deepEqual(originRange('bytes=5-'), { start: 5, end: undefined });
  assert.deepEqual(originRange('bytes=5-9'), { start: 5, end: 9 });
  for (const other of [undefined, 'bytes=-5', 'bytes=9-5', 'bytes=1-2,4-5']) assert.equal(originRange(other), undefined, String(other));
});

test('FillProgress holds the last byte back until published', async () => {
  const p = new FillProgress('id', 'key');
  assert.equal(p.available(), 0);
  p.begin(10, null, '/tmp/x', '/obj/x');
  assert.deepEqual(await p.started, { kind: 'growing', size: 10, etag: null });
  const woke = p.changed();
  p.advance(4);
  await woke;
  assert.equal(p.available(), 4);
  p.advance(6);
  assert.equal(p.available(), 9);
  p.publish();
  assert.equal(p.available(), 10);
  assert.equal(p.path, '/obj/x');
  const failed = new FillProgress('id', 'key');
  failed.fail(new Error('boom'));
  await assert.rejects(failed.started, /boom/);
});

test('SingleFlight runs once per key and forgets the key when the run settles', async () => {
  const flight = new SingleFlight<{ n: number }>();
  let runs = 0;
  let finish!: () => void;
  const gate = new Promise<void>((r) => (finish = r));
  const joins = Array.from({ length: 5 }, () =>
    flight.join(
      'k',
      () => ({ n: ++runs }),
      () => gate,
    ),
  );
  assert.equal(runs, 1);
  assert.deepEqual(
    joins.map((j) => j.started),
    [true, false, false, false, false],
  );
  assert.ok(joins.every((j) => j.value === joins[0].value));
  assert.equal(
    flight.join(
      'other',
      () => ({ n: 99 }),
      () => Promise.reject(new Error('x')),
    ).started,
    true,
  );
  finish();
  await gate;
  await new Promise((r) => setImmediate(r));
  assert.equal(flight.size, 0);
  assert.equal(
    flight.join(
      'k',
      () => ({ n: ++runs }),
      () => Promise.resolve(),
    ).value.n,
    2,
  );
});
