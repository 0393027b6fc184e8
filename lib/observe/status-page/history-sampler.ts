import type { Logger } from '../log';
import { deviceRequests, devicesActive, journalMetrics } from '../metrics';
import { statusBoard } from './status-board';

// The status page's history: once a minute, figures the gateway already keeps (the metrics'
// gauges and counters, the board's byte totals, the process' memory) go into a ring of the last
// 24 hours. The ring is columns of Float64Array allocated at the start, so its memory is fixed:
// 1,440 samples × 9 columns × 8 bytes = 103,680 bytes, whatever the traffic. In memory, per
// process: a restart starts it empty. A sample's time is kept on the monotonic clock and given as
// wall-clock time when the history is read (the wall clock now, less the time since): a step of
// the wall clock moves the whole axis, so it stays in order (uPlot wants ascending x) and a day
// of samples spans a day.

/** Minutes in a day: the ring's size at the production interval of one minute. */
export const HISTORY_SAMPLES = 1440;
export const HISTORY_INTERVAL_MS = 60_000;

/** The figures kept, in the order of the JSON's series. */
export const HISTORY_FIELDS = [
  'devices_active',
  'requests',
  'bytes_fetched_upstream',
  'bytes_served_to_devices',
  'journal_queued',
  'journal_bytes',
  'rss_bytes',
  'heap_used_bytes',
] as const;
export type HistoryField = (typeof HISTORY_FIELDS)[number];

/** Running totals: the ring keeps what they grew by during each interval, not the total. */
const COUNTERS: ReadonlySet<HistoryField> = new Set(['requests', 'bytes_fetched_upstream', 'bytes_served_to_devices']);

/** How each figure is read; a counter gives its total since start. */
export type HistoryFigures = Record<HistoryField, () => number>;

export const gatewayFigures: HistoryFigures = {
  devices_active: () => devicesActive(),
  requests: deviceRequests,
  bytes_fetched_upstream: () => statusBoard.bytesFetched,
  bytes_served_to_devices: () => statusBoard.bytesServed,
  // The journal's state is the whole gateway's in every worker (the primary broadcasts it).
  journal_queued: () => journalMetrics.view()?.queued ?? 0,
  journal_bytes: () => journalMetrics.view()?.bytes ?? 0,
  rss_bytes: () => process.memoryUsage.rss(),
  heap_used_bytes: () => process.memoryUsage().heapUsed,
};

/** The history as /api/status/history sends it: oldest first, time in Unix seconds, null where a figure could not be read. */
export interface HistoryJson {
  interval_seconds: number;
  capacity: number;
  time: number[];
  series: Record<HistoryField, (number | null)[]>;
}

export class HistoryRing {
  private readonly time: Float64Array;
  private readonly columns: Record<HistoryField, Float64Array>;
  /** Where the next sample goes; once full, also the oldest. */
  private next = 0;
  private count = 0;

  constructor(
    readonly capacity = HISTORY_SAMPLES,
    /** Monotonic ms: the samples' times (tests pass their own). */
    readonly clock: () => number = () => performance.now(),
  ) {
    this.time = new Float64Array(capacity);
    this.columns = Object.fromEntries(HISTORY_FIELDS.map((f) => [f, new Float64Array(capacity)])) as Record<HistoryField, Float64Array>;
  }

  get size(): number {
    return this.count;
  }

  /** Bytes the ring holds, whatever its fill: its columns are allocated at once. */
  get bytes(): number {
    return this.time.byteLength + HISTORY_FIELDS.length * this.capacity * Float64Array.BYTES_PER_ELEMENT;
  }

  /** A sample at `at` (monotonic ms, of `clock`); NaN marks a figure not read. The oldest goes once full. */
  push(at: number, values: Record<HistoryField, number>): void {
    this.time[this.next] = at;
    for (const f of HISTORY_FIELDS) this.columns[f][this.next] = values[f];
    this.next = (this.next + 1) % this.capacity;
    this.count = Math.min(this.count + 1, this.capacity);
  }

  /** `wallNow`: Unix ms, what the sample taken just now is dated. */
  toJSON(intervalMs = HISTORY_INTERVAL_MS, wallNow = Date.now()): HistoryJson {
    const monoNow = this.clock();
    const start = (this.next - this.count + this.capacity) % this.capacity;
    const pick = <T>(column: Float64Array, map: (v: number) => T): T[] => {
      const out = new Array<T>(this.count);
      for (let i = 0; i < this.count; i++) out[i] = map(column[(start + i) % this.capacity]);
      return out;
    };
    return {
      interval_seconds: intervalMs / 1000,
      capacity: this.capacity,
      time: pick(this.time, (at) => (wallNow - (monoNow - at)) / 1000),
      series: Object.fromEntries(
        HISTORY_FIELDS.map((f) => [f, pick(this.columns[f], (v) => (Number.isNaN(v) ? null : v))]),
      ) as HistoryJson['series'],
    };
  }
}

export interface HistorySamplerOptions {
  intervalMs?: number;
  figures?: HistoryFigures;
  ring?: HistoryRing;
  log?: Logger;
  /** Monotonic ms, the samples' times, for the ring made when none is given (tests pass their own). */
  clock?: () => number;
}

export interface HistorySampler {
  readonly ring: HistoryRing;
  readonly intervalMs: number;
  /** One sample now (the timer calls it; tests too). */
  tick(): void;
  stop(): void;
}

/** Samples every intervalMs on an unref'd timer: it never holds the process up. */
export function startHistorySampler(opts: HistorySamplerOptions = {}): HistorySampler {
  const intervalMs = opts.intervalMs ?? HISTORY_INTERVAL_MS;
  const figures = opts.figures ?? gatewayFigures;
  const ring = opts.ring ?? new HistoryRing(HISTORY_SAMPLES, opts.clock);
  let warned = false;
  const read = (field: HistoryField): number => {
    try {
      const value = figures[field]();
      if (Number.isFinite(value)) return value;
      throw new Error(`not a number: ${value}`);
    } catch (err) {
      // A figure that cannot be read is a gap in its chart, not the end of the history.
      if (!warned) opts.log?.warn('status page history: a figure could not be read', { figure: field, err: err as Error });
      warned = true;
      return Number.NaN;
    }
  };
  // The counters' totals at the last sample: the next one keeps what they grew by since.
  const last = new Map<HistoryField, number>();
  for (const f of COUNTERS) last.set(f, read(f));

  const tick = (): void => {
    const values = {} as Record<HistoryField, number>;
    for (const f of HISTORY_FIELDS) {
      const value = read(f);
      if (!COUNTERS.has(f)) values[f] = value;
      else {
        const before = last.get(f) ?? Number.NaN;
        values[f] = Number.isNaN(value) || Number.isNaN(before) ? Number.NaN : Math.max(0, value - before);
        if (!Number.isNaN(value)) last.set(f, value);
      }
    }
    ring.push(ring.clock(), values);
  };
  const timer = setInterval(tick, intervalMs).unref();
  return { ring, intervalMs, tick, stop: () => clearInterval(timer) };
}
