import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BoundedMap } from '../../lib/state/bounded-map';

test('past its cap the least recently used entry goes; a use keeps an entry', () => {
  const dropped: string[] = [];
  const map = new BoundedMap<string, number>(
    { maxEntries: 3 },
    () => 0,
    (key) => dropped.push(key),
  );
  for (const key of ['a', 'b', 'c']) map.set(key, 1);
  assert.equal(map.get('a'), 1); // a is now the most recent
  map.set('d', 1);
  assert.deepEqual([...map.keys()], ['c', 'a', 'd'], 'b went');
  assert.deepEqual(dropped, ['b']);
  assert.equal(map.peek('c'), 1);
  map.set('e', 1); // peek did not count: c goes
  assert.deepEqual([...map.keys()], ['a', 'd', 'e']);
});

test('an entry unused for maxAgeMs is gone, at a read or at the next write', () => {
  let now = 0;
  const map = new BoundedMap<string, string>({ maxEntries: 10, maxAgeMs: 100 }, () => now);
  map.set('old', 'x');
  now = 50;
  map.set('young', 'y');
  now = 100;
  assert.equal(map.has('old'), false);
  assert.equal(map.get('young'), 'y'); // used at 100: lives until 200
  now = 199;
  map.set('other', 'z');
  assert.deepEqual([...map.keys()], ['young', 'other']);
  now = 200;
  map.set('last', 'w');
  assert.deepEqual([...map.keys()], ['other', 'last']);
});

test('churn: a million keys through a map of 1,000 leave 1,000', () => {
  const map = new BoundedMap<number, number>({ maxEntries: 1_000, maxAgeMs: 60_000 });
  for (let i = 0; i < 1_000_000; i++) map.set(i, i);
  assert.equal(map.size, 1_000);
  assert.equal(map.peek(999_999), 999_999);
  assert.equal(map.peek(998_999), undefined);
});
