import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inWindow, msUntilClose, msUntilOpen, parsePrewarmWindow } from '../../lib/config/prewarm-window';

const at = (h: number, m = 0) => new Date(2026, 11, 5, h, m, 0);

test('a window within one day: open from its start to just before its end', () => {
  const w = parsePrewarmWindow('01:00-05:30')!;
  assert.equal(inWindow(w, at(0, 59)), false);
  assert.equal(inWindow(w, at(1, 0)), true);
  assert.equal(inWindow(w, at(5, 29)), true);
  assert.equal(inWindow(w, at(5, 30)), false);
  assert.equal(msUntilOpen(w, at(23, 0)), 2 * 3600_000);
  assert.equal(msUntilOpen(w, at(3, 0)), 0);
  assert.equal(msUntilClose(w, at(3, 0)), 2.5 * 3600_000);
});

test('a window across midnight', () => {
  const w = parsePrewarmWindow('22:00-06:00')!;
  assert.equal(inWindow(w, at(23, 0)), true);
  assert.equal(inWindow(w, at(2, 0)), true);
  assert.equal(inWindow(w, at(6, 0)), false);
  assert.equal(inWindow(w, at(12, 0)), false);
  assert.equal(msUntilOpen(w, at(21, 0)), 3600_000);
  assert.equal(msUntilClose(w, at(23, 0)), 7 * 3600_000);
});

test('empty means any time; anything else that is not HH:MM-HH:MM is refused', () => {
  assert.equal(parsePrewarmWindow(''), null);
  assert.equal(inWindow(null), true);
  assert.equal(msUntilClose(null), Infinity);
  assert.equal(parsePrewarmWindow('00:00-24:00')!.end, 24 * 60);
  for (const bad of ['1:00-5:00', '25:00-06:00', '01:00-01:00', '01:00', '01:00-05:60', ' 01:00-05:00']) {
    assert.throws(() => parsePrewarmWindow(bad), /expected/, bad);
  }
});
