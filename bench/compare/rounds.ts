import { cpuSnapshot, systemNoteSince, type SystemNote } from '../../spec/support/process-stats';

// A B A B … rounds, each measurement with the steal and load of its own window; rounds above
// the steal limit are dropped (peers-and-performance.md §0.5: steal reached 60 % in one run).
// When every round of a side is above the limit, all are kept and the result says so.

export const MAX_STEAL_PCT = Number(process.env.BENCH_MAX_STEAL ?? 10);

export interface Sample {
  value: number;
  note: SystemNote;
}

export interface Side {
  name: string;
  /** One measurement; higher or lower is better depending on the case. */
  run(round: number): Promise<number>;
  /** A reference printed for context only: measured in the first round, not in every one. */
  once?: boolean;
  /** Measured in the first `rounds` rounds only (the previous runtime's side, to fit the time budget). */
  rounds?: number;
}

export type Samples = Map<string, Sample[]>;

export async function alternate(rounds: number, sides: Side[]): Promise<Samples> {
  const out: Samples = new Map(sides.map((s) => [s.name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const side of sides) {
      if ((side.once && round > 0) || (side.rounds !== undefined && round >= side.rounds)) continue;
      const before = cpuSnapshot();
      const value = await side.run(round);
      out.get(side.name)!.push({ value, note: systemNoteSince(before) });
    }
  }
  return out;
}

export interface Summary {
  median: number;
  values: number[];
  kept: number;
  /** Every round was above the steal limit: the median is of noisy rounds. */
  noisy: boolean;
  maxSteal: number;
  loads: number[];
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function summarize(samples: Sample[]): Summary {
  const kept = samples.filter((s) => s.note.stealPct <= MAX_STEAL_PCT);
  const used = kept.length > 0 ? kept : samples;
  return {
    median: median(used.map((s) => s.value)),
    values: samples.map((s) => s.value),
    kept: kept.length,
    noisy: kept.length === 0,
    maxSteal: Math.max(...samples.map((s) => s.note.stealPct)),
    loads: samples.map((s) => s.note.load1),
  };
}

/** One line per side: median, every round (dropped ones marked *), steal and load. */
export function describe(name: string, s: Summary, samples: Sample[], fmt: (v: number) => string): string {
  const rounds = samples.map((x) => `${fmt(x.value)}${x.note.stealPct > MAX_STEAL_PCT ? '*' : ''}`).join(' / ');
  const steal = samples.map((x) => x.note.stealPct.toFixed(0)).join('/');
  const load = samples.map((x) => x.note.load1.toFixed(1)).join('/');
  return `  ${name.padEnd(10)}: ${fmt(s.median).padStart(12)}  rounds ${rounds}  steal% ${steal}  load ${load}${s.noisy ? '  (all rounds above the steal limit: noisy)' : ''}`;
}
