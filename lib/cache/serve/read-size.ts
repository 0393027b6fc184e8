// How many bytes each serving stream reads at a time, and the memory it reads into.
// Measured on this box (docs peers-and-performance §2.2): 64 KiB reads ≈ 0.75× nginx at
// 91 MB RSS for 200 downloads, 256 KiB ≈ 1.0× at 234 MB. Adaptive: a fixed budget shared
// by the streams active right now, so a few downloads get big reads and 200 get small ones.
// Every read goes into 64 KiB slabs from one free list (readv), so a stream that changes
// size, or a keep-alive device that asks again, reuses slabs instead of leaving buffers of
// odd sizes for the GC: garbage waiting for a GC (and malloc keeping what it freed) is what
// pushed RSS past the budget when each stream had a buffer of its own size.

export const KiB = 1024;
export const SLAB = 64 * KiB;
export const DEFAULT_BUDGET = 8 * 1024 * KiB;
export const MIN_READ = SLAB;
export const MAX_READ = 512 * KiB;

/** Largest power of two ≤ budget / active, clamped to [min, max]. */
export function adaptiveReadSize(active: number, budget = DEFAULT_BUDGET, min = MIN_READ, max = MAX_READ): number {
  const share = budget / Math.max(1, active);
  if (share <= min) return min;
  if (share >= max) return max;
  return 2 ** Math.floor(Math.log2(share));
}

export type ReadSizeSetting = number | 'adaptive';

/** Counts active streams, answers the read size for the next read and lends the slabs. */
export class ReadSizer {
  private active = 0;
  private readonly free: Buffer[] = [];
  /** Slabs that exist (lent or idle): kept ≤ the budget, or one per active stream when more. */
  private allocated = 0;

  constructor(private readonly setting: ReadSizeSetting = 'adaptive') {
    if (setting !== 'adaptive' && !(Number.isInteger(setting) && setting >= SLAB && setting % SLAB === 0)) {
      throw new TypeError(`expected readSize to be 'adaptive' or a multiple of 65536, got ${String(setting)}`);
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
  /** Resize a stream's slabs to the current read size (slabs it holds are not in flight). */
  slabs(held: Buffer[]): Buffer[] {
    const want = this.current() / SLAB;
    while (held.length > want) this.giveBack([held.pop() as Buffer]);
    while (held.length < want) held.push(this.free.pop() ?? this.allocate());
    return held;
  }
  giveBack(slabs: Buffer[]): void {
    for (const s of slabs) {
      if (this.allocated > Math.max(DEFAULT_BUDGET / SLAB, this.active)) this.allocated--;
      else this.free.push(s);
    }
    slabs.length = 0;
  }
  private allocate(): Buffer {
    this.allocated++;
    return Buffer.allocUnsafeSlow(SLAB);
  }
}
