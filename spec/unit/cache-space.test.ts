import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HEADROOM, planEviction, type Evictable } from '../../lib/cache/store/evict-lru';
import { adaptiveReadSize, KiB, ReadSizer } from '../../lib/cache/serve/read-size';

const MB = 1024 * 1024;
const entries: Evictable[] = [
  { id: 'old', size: 10 * MB, lastServed: 1, readers: 0 },
  { id: 'busy', size: 50 * MB, lastServed: 0, readers: 2 },
  { id: 'mid', size: 20 * MB, lastServed: 5, readers: 0 },
  { id: 'new', size: 30 * MB, lastServed: 9, readers: 0 },
];

test('planEviction removes least recently served idle entries until the artifact fits', () => {
  const cases: { name: string; free: number; incoming: number; maxSize?: number; reserved?: number; fits: boolean; evict: string[] }[] = [
    { name: 'fits already', free: 100 * MB, incoming: 10 * MB, fits: true, evict: [] },
    { name: 'one old entry is enough', free: 5 * MB, incoming: 10 * MB, fits: true, evict: ['old'] },
    { name: 'the busy one is skipped even though oldest', free: 5 * MB, incoming: 30 * MB, fits: true, evict: ['old', 'mid'] },
    { name: 'all idle entries', free: 5 * MB, incoming: 60 * MB, fits: true, evict: ['old', 'mid', 'new'] },
    { name: 'cannot fit without the busy one: nothing removed', free: 5 * MB, incoming: 80 * MB, fits: false, evict: [] },
    { name: 'reserved bytes of running fills count', free: 30 * MB, incoming: 10 * MB, reserved: 25 * MB, fits: true, evict: ['old'] },
    { name: 'MaxSize caps below free space', free: 1000 * MB, incoming: 20 * MB, maxSize: 115 * MB, fits: true, evict: ['old', 'mid'] },
    { name: 'bigger than MaxSize: uncached', free: 1000 * MB, incoming: 200 * MB, maxSize: 120 * MB, fits: false, evict: [] },
    { name: 'headroom is kept', free: 10 * MB + HEADROOM - 1, incoming: 10 * MB, fits: true, evict: ['old'] },
  ];
  for (const c of cases) {
    const used = entries.reduce((n, e) => n + e.size, 0);
    const plan = planEviction(entries, { free: c.free, incoming: c.incoming, used, reserved: c.reserved ?? 0, maxSize: c.maxSize ?? 0 });
    assert.deepEqual(plan, { fits: c.fits, evict: c.evict }, c.name);
  }
});

test('adaptive read size shares a budget between active streams', () => {
  const cases: [number, number][] = [
    [0, 512 * KiB],
    [1, 512 * KiB],
    [16, 512 * KiB],
    [32, 256 * KiB],
    [50, 128 * KiB],
    [100, 64 * KiB],
    [200, 64 * KiB],
    [5000, 64 * KiB],
  ];
  for (const [active, size] of cases) assert.equal(adaptiveReadSize(active), size, `${active} streams`);
  const sizer = new ReadSizer(64 * KiB);
  sizer.enter();
  assert.equal(sizer.current(), 64 * KiB);
  assert.throws(() => new ReadSizer(100), /readSize/);
  assert.throws(() => new ReadSizer(100 * KiB), /multiple/);
  const adaptive = new ReadSizer('adaptive');
  adaptive.enter();
  const held = adaptive.slabs([]);
  assert.equal(held.length, 8);
  for (let i = 0; i < 199; i++) adaptive.enter();
  assert.equal(adaptive.slabs(held).length, 1);
  const again = adaptive.slabs([]);
  assert.equal(again.length, 1);
  assert.ok(held[0] !== again[0], 'a slab is lent to one stream at a time');
});
