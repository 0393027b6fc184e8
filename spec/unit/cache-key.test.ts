import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cacheKey, entryId, plainMd5Etag } from '../../lib/cache/cache-key';
import { cacheLayout, parseTmpName, tmpPath } from '../../lib/cache/cache-layout';

test('cacheKey keeps host and path, never the presigned query', () => {
  const cases: [string, string][] = [
    ['https://s3.amazonaws.com/bucket/a.mender?X-Amz-Signature=abc&X-Amz-Expires=60', 's3.amazonaws.com/bucket/a.mender'],
    ['https://S3.AmazonAWS.com/bucket/a.mender?X-Amz-Signature=def', 's3.amazonaws.com/bucket/a.mender'],
    ['https://host:443/x', 'host/x'],
    ['http://127.0.0.1:9000/b/k%20y#frag', '127.0.0.1:9000/b/k%20y'],
    ['https://host/b/../c', 'host/c'],
  ];
  for (const [url, key] of cases) assert.equal(cacheKey(new URL(url)), key, url);
  assert.throws(() => cacheKey(new URL('file:///etc/passwd')), /http\(s\)/);
});

test('entryId is a stable sha256 per key, and different keys differ', () => {
  const a = entryId('h/a');
  assert.match(a, /^[0-9a-f]{64}$/);
  assert.equal(entryId('h/a'), a);
  assert.notEqual(entryId('h/b'), a);
  assert.equal(entryId(cacheKey(new URL('https://h/a?sig=1'))), entryId(cacheKey(new URL('https://h/a?sig=2'))));
});

test('plainMd5Etag accepts only a single-part MD5 ETag', () => {
  const cases: [string | null, string | null][] = [
    ['"9e107d9d372bb6826bd81d3542a419d6"', '9e107d9d372bb6826bd81d3542a419d6'],
    ['9E107D9D372BB6826BD81D3542A419D6', '9e107d9d372bb6826bd81d3542a419d6'],
    ['"9e107d9d372bb6826bd81d3542a419d6-3"', null],
    ['W/"9e107d9d372bb6826bd81d3542a419d6"', null],
    ['"abc"', null],
    ['', null],
    [null, null],
  ];
  for (const [etag, md5] of cases) assert.equal(plainMd5Etag(etag), md5, String(etag));
});

test('tmp names carry their owner and are unique', () => {
  const layout = cacheLayout('/var/cache/gw');
  assert.equal(layout.root, '/var/cache/gw/v1');
  const id = entryId('k');
  const a = tmpPath(layout, id);
  const b = tmpPath(layout, id, '.json');
  assert.notEqual(a, b);
  const owner = parseTmpName(a.slice(layout.tmp.length + 1));
  assert.equal(owner?.pid, process.pid);
  assert.equal(parseTmpName(b.slice(layout.tmp.length + 1))?.pid, process.pid);
  for (const bad of ['x', `${id}.h.12`, `${id}.h.x.aaaaaaaaaaaa`, '../etc']) assert.equal(parseTmpName(bad), null, bad);
});
