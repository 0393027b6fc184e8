import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cacheKey, entryId, plainMd5Etag } from '../../lib/cache/store/cache-key';
import { cacheLayout, parseTmpName, tmpPath } from '../../lib/cache/store/cache-layout';
import { processAlive, startTimeOf } from '../../lib/server/process-liveness';

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
  assert.equal(owner?.start, startTimeOf('self'));
  assert.equal(parseTmpName(b.slice(layout.tmp.length + 1))?.pid, process.pid);
  // Names written before start times were recorded still parse (the pid alone decides then).
  assert.deepEqual(parseTmpName(`${id}.h.12.aaaaaaaaaaaa`), { host: 'h', pid: 12 });
  for (const bad of ['x', `${id}.h.12`, `${id}.h.x.aaaaaaaaaaaa`, `${id}.h.12-.aaaaaaaaaaaa`, '../etc'])
    assert.equal(parseTmpName(bad), null, bad);
});

test('process liveness: a pid that now names another process (another start time) is dead', () => {
  const self = startTimeOf('self');
  assert.ok(Number.isSafeInteger(self), `start time of this process from /proc: ${self}`);
  assert.equal(processAlive({ pid: process.pid, start: self }), true);
  assert.equal(processAlive({ pid: process.pid }), true, 'no start time recorded: the pid decides');
  assert.equal(processAlive({ pid: process.pid, start: self! + 1 }), false);
  // A thread of this process has its own id in the same space and its own start time.
  const thread = readdirSync('/proc/self/task')
    .map(Number)
    .find((tid) => tid !== process.pid && startTimeOf(tid) !== self);
  if (thread !== undefined) assert.equal(processAlive({ pid: thread, start: self }), false, `thread ${thread}`);
  assert.equal(processAlive({ pid: 2 ** 22 + 1 }), false, 'beyond any pid_max');
});

test('process liveness: a killed process not reaped yet (a zombie) is dead', async () => {
  // `sleep 0` exits at once; its parent then execs `sleep 3`, which never reaps it.
  const parent = spawn('sh', ['-c', 'sleep 0 & exec sleep 3'], { stdio: 'ignore' });
  try {
    let zombie: number | undefined;
    for (let i = 0; i < 100 && zombie === undefined; i++) {
      await new Promise((r) => setTimeout(r, 20));
      const children = readFileSync(`/proc/${parent.pid}/task/${parent.pid}/children`, 'utf8')
        .trim()
        .split(' ')
        .filter(Boolean)
        .map(Number);
      zombie = children.find((pid) => /^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8')));
    }
    assert.ok(zombie !== undefined, 'a zombie child of the sh process');
    assert.doesNotThrow(() => process.kill(zombie!, 0), 'signal 0 still reaches a zombie');
    assert.equal(processAlive({ pid: zombie!, start: startTimeOf(zombie!) }), false);
    assert.equal(processAlive({ pid: zombie! }), false);
  } finally {
    parent.kill('SIGKILL');
  }
});
