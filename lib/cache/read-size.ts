// How many bytes each serving stream reads at a time. Measured on this box (docs
// peers-and-performance §2.2): 64 KiB reads ≈ 0.75× nginx at 91 MB RSS for 200 downloads,
// 256 KiB ≈ 1.0× at 234 MB. Adaptive: a fixed budget shared by the streams active right
// now, so a few downloads get big reads and 200 get small ones; each stream reuses one
// buffer, so memory is bounded by the budget rather than by garbage waiting for the GC.

export const KiB = 1024;
export const DEFAULT_BUDGET = 16 * 1024 * KiB;
export const MIN_READ = 64 * KiB;
export const MAX_READ = 512 * KiB;

/** Largest power of two ≤ budget / active, clamped to [min, max]. */
export function adaptiveReadSize(active: number, budget = DEFAULT_BUDGET, min = MIN_READ, max = MAX_READ): number {
  const share = budget / Math.max(1, active);
  if (share <= min) return min;
  if (share >= max) return max;
  return 2 ** Math.floor(Math.log2(share));
}

export type ReadSizeSetting = number | 'adaptive';

/** Counts active streams and answers the read size for the next read. */
export class ReadSizer {
  private active = 0;
  constructor(private readonly setting: ReadSizeSetting = 'adaptive') {
    if (setting !== 'adaptive' && !(Number.isInteger(setting) && setting >= 4 * KiB)) {
      throw new TypeError(`expected readSize to be 'adaptive' or an integer ≥ 4096, got ${String(setting)}`);
    }
  }
  get streams(): number {
    return this.active;
  }
  enter(): void {
    this.active++;
  }
  leave(): void {
    this.active--;
  }
  current(): number {
    return this.setting === 'adaptive' ? adaptiveReadSize(this.active) : this.setting;
  }
}
