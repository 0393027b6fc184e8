import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  HISTORY_FIELDS,
  HISTORY_SAMPLES,
  type HistoryField,
  type HistoryFigures,
  HistoryRing,
  startHistorySampler,
} from '../../lib/observe/status-page/history-sampler';
import { captureLog } from '../support/capture-log';

// The status page's history (lib/observe/status-page/history-sampler.ts): a ring of a day at one
// minute that never grows past its 1,440 samples, and a sampler a broken figure cannot stop.

/** Figures read from `values`, each a number or a function that may throw. */
function figuresOf(values: Partial<Record<HistoryField, () => number>>): HistoryFigures {
  return Object.fromEntries(HISTORY_FIELDS.map((f) => [f, values[f] ?? (() => 0)])) as HistoryFigures;
}

describe('HistoryRing', () => {
  it('holds at most 1,440 samples after 5,000 ticks, the oldest dropped first', (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    let now = 0;
    let ticks = 0;
    const sampler = startHistorySampler({
      clock: () => now,
      figures: figuresOf({ devices_active: () => ticks, requests: () => ticks * 3 }),
    });
    for (ticks = 1; ticks <= 5000; ticks++) {
      now = ticks * 60_000;
      t.mock.timers.tick(60_000);
    }
    sampler.stop();
    const ring = sampler.ring;
    assert.equal(ring.size, HISTORY_SAMPLES);
    const json = ring.toJSON(undefined, now);
    assert.equal(json.time.length, 1440);
    // Samples 3,561 to 5,000 are kept, oldest first; 1 to 3,560 are gone.
    assert.equal(json.time[0], (5000 - 1439) * 60);
    assert.equal(json.time.at(-1), 5000 * 60);
    assert.deepEqual(json.series.devices_active.slice(0, 3), [3561, 3562, 3563]);
    assert.equal(json.series.devices_active.at(-1), 5000);
    // A counter is kept as what it grew by in each interval, not as its total.
    assert.deepEqual(new Set(json.series.requests), new Set([3]));
    for (const f of HISTORY_FIELDS) assert.equal(json.series[f].length, 1440, f);
    // Its memory is fixed at the start: a day of 9 columns of 8 bytes.
    assert.equal(ring.bytes, 1440 * 9 * 8);
    assert.equal(new HistoryRing().bytes, ring.bytes);
  });

  it('is in sample order before it is full too', () => {
    const ring = new HistoryRing(4, () => 6000);
    const sample = (v: number) => Object.fromEntries(HISTORY_FIELDS.map((f) => [f, v])) as Record<HistoryField, number>;
    ring.push(1000, sample(1));
    ring.push(2000, sample(2));
    assert.deepEqual(ring.toJSON(undefined, 6000).time, [1, 2]);
    for (let i = 3; i <= 6; i++) ring.push(i * 1000, sample(i));
    assert.deepEqual(ring.toJSON(undefined, 6000).time, [3, 4, 5, 6]);
    assert.deepEqual(ring.toJSON().series.rss_bytes, [3, 4, 5, 6]);
  });
});

describe('startHistorySampler', () => {
  it('a figure that throws is a gap in its series; the other figures and later ticks go on', () => {
    const { log, lines } = captureLog('warn');
    let broken = true;
    let served = 0;
    const sampler = startHistorySampler({
      log,
      figures: figuresOf({
        journal_queued: () => {
          if (broken) throw new Error('journal not readable');
          return 7;
        },
        rss_bytes: () => Number.NaN,
        bytes_served_to_devices: () => served,
      }),
    });
    served = 100;
    sampler.tick();
    sampler.tick();
    broken = false;
    served = 250;
    sampler.tick();
    sampler.stop();
    const json = sampler.ring.toJSON();
    assert.equal(json.time.length, 3);
    assert.deepEqual(json.series.journal_queued, [null, null, 7]);
    assert.deepEqual(json.series.rss_bytes, [null, null, null]);
    assert.deepEqual(json.series.bytes_served_to_devices, [100, 0, 150]);
    assert.deepEqual(json.series.devices_active, [0, 0, 0]);
    // One warning, not one per tick.
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /status page history: a figure could not be read/);
  });

  it('samples on its timer at the interval given, and stops', (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    const sampler = startHistorySampler({ intervalMs: 250, figures: figuresOf({}) });
    t.mock.timers.tick(1000);
    assert.equal(sampler.ring.size, 4);
    assert.equal(sampler.ring.toJSON(sampler.intervalMs).interval_seconds, 0.25);
    sampler.stop();
    t.mock.timers.tick(1000);
    assert.equal(sampler.ring.size, 4);
  });

  it('a step of the wall clock moves the time axis whole: ascending, spanning what elapsed', (t) => {
    const start = Date.UTC(2030, 0, 1);
    // Date only: a step of mocked timers would fire the interval for every minute skipped.
    t.mock.timers.enable({ apis: ['Date'], now: start });
    let mono = 0;
    const sampler = startHistorySampler({ clock: () => mono, figures: figuresOf({}) });
    const minute = (): void => {
      mono += 60_000;
      t.mock.timers.tick(60_000);
      sampler.tick();
    };
    for (let i = 0; i < 10; i++) minute();
    t.mock.timers.setTime(Date.now() - 3 * 3_600_000); // stepped back three hours
    for (let i = 0; i < 10; i++) minute();
    t.mock.timers.setTime(Date.now() + 24 * 3_600_000); // then forward a day
    for (let i = 0; i < 10; i++) minute();
    sampler.stop();
    const { time } = sampler.ring.toJSON();
    assert.equal(time.length, 30);
    assert.equal(time.at(-1), Date.now() / 1000, 'the sample just taken is dated now');
    for (let i = 1; i < time.length; i++) assert.equal(time[i]! - time[i - 1]!, 60, `sample ${i}: a minute after the one before`);
  });

  it('the gateway figures read without a gateway running', () => {
    const sampler = startHistorySampler();
    sampler.tick();
    sampler.stop();
    const json = sampler.ring.toJSON();
    assert.ok((json.series.rss_bytes[0] ?? 0) > 0);
    assert.ok((json.series.heap_used_bytes[0] ?? 0) > 0);
    assert.deepEqual(json.series.journal_queued, [0]);
  });
});
