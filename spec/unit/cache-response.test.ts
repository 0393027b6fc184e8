import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planResponse } from '../../lib/artifacts/response-plan';
import { checkResponse, NoContentLength, OriginRefused } from '../../lib/cache/fill/resumable-download';
import type { GatewayError } from '../../lib/http/gateway-error';
import { FillProgress } from '../../lib/cache/fill/fill-progress';
import { SingleFlight } from '../../lib/cache/fill/single-flight';

test('planResponse: 200, 206 and 416 with exact lengths', () => {
  const cases: { range?: string; status: number; length?: number; cr?: string; start?: number; end?: number }[] = [
    { status: 200, length: 1000, start: 0, end: 999 },
    { range: 'bytes=0-', status: 206, length: 1000, cr: 'bytes 0-999/1000', start: 0, end: 999 },
    { range: 'bytes=100-199', status: 206, length: 100, cr: 'bytes 100-199/1000', start: 100, end: 199 },
    { range: 'bytes=900-5000', status: 206, length: 100, cr: 'bytes 900-999/1000', start: 900, end: 999 },
    { range: 'bytes=-10', status: 206, length: 10, cr: 'bytes 990-999/1000', start: 990, end: 999 },
    { range: 'bytes=1000-', status: 416, cr: 'bytes */1000' },
    { range: 'bytes=zz', status: 200, length: 1000, start: 0, end: 999 },
    { range: 'bytes=0-1,5-6', status: 200, length: 1000, start: 0, end: 999 },
  ];
  const rep = { size: 1000, etag: '"e"', lastModified: 'Tue, 01 Dec 2026 10:00:00 GMT' };
  for (const c of cases) {
    const headers = c.range === undefined ? {} : { range: c.range };
    if (c.status === 416) {
      assert.throws(
        () => planResponse(headers, rep),
        (e: GatewayError) => e.status === 416 && e.headers['Content-Range'] === c.cr,
      );
      continue;
    }
    const plan = planResponse(headers, rep);
    assert.equal(plan.status, c.status, String(c.range));
    assert.equal(plan.headers['Content-Length'], c.length, String(c.range));
    assert.equal(plan.headers['Content-Range'], c.cr, String(c.range));
    assert.equal(plan.headers.ETag, '"e"');
    assert.equal(plan.headers['Last-Modified'], rep.lastModified);
    assert.equal(plan.headers['Accept-Ranges'], 'bytes');
    assert.equal(plan.headers['Content-Encoding'], undefined);
    assert.deepEqual([plan.start, plan.end], [c.start, c.end], String(c.range));
  }
});

test('planResponse: If-Range decides whether the Range applies; no validator, no header', () => {
  const rep = { size: 1000, etag: '"e"', lastModified: 'Tue, 01 Dec 2026 10:00:00 GMT' };
  assert.equal(planResponse({ range: 'bytes=10-', 'if-range': '"e"' }, rep).status, 206);
  assert.equal(planResponse({ range: 'bytes=10-', 'if-range': rep.lastModified }, rep).status, 206);
  const stale = planResponse({ range: 'bytes=10-', 'if-range': '"old"' }, rep);
  assert.deepEqual([stale.status, stale.headers['Content-Length'], stale.headers['Content-Range']], [200, 1000, undefined]);
  assert.equal(planResponse({ range: 'bytes=5000-', 'if-range': '"old"' }, rep).status, 200, 'no 416 when the Range is ignored');
  const bare = planResponse({}, { size: 0, etag: null, lastModified: null });
  assert.deepEqual([bare.status, bare.headers['Content-Length'], bare.start, bare.end], [200, 0, 0, -1]);
  assert.equal('ETag' in bare.headers || 'Last-Modified' in bare.headers, false);
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
