// A map with a cap and an age, for the state a device, a token or a connection leaves behind
// (docs/operations.md, "Bounded state"): a gateway runs for months while identities come and go,
// so nothing keyed by them may grow with every one ever seen. Entries are kept in order of last
// use (a Map keeps insertion order; a use moves the entry to the end): past `maxEntries` the
// least recently used goes; an entry not used for `maxAgeMs` goes at the next write or read of it.

export interface Bounds {
  /** Entries kept at most; the least recently used goes first. */
  maxEntries: number;
  /** An entry not used for this long is gone (undefined: no age). */
  maxAgeMs?: number;
}

interface Slot<V> {
  value: V;
  usedAt: number;
}

export class BoundedMap<K, V> {
  private readonly slots = new Map<K, Slot<V>>();

  constructor(
    readonly bounds: Bounds,
    /** Monotonic by default: a clock stepped by NTP ages nothing early or late. */
    private readonly clock: () => number = () => performance.now(),
    /** Told of every entry dropped for the cap or for its age (not of delete()). */
    private readonly onDrop?: (key: K, value: V) => void,
  ) {
    if (!(bounds.maxEntries >= 1)) throw new Error('BoundedMap: maxEntries must be at least 1');
  }

  get size(): number {
    return this.slots.size;
  }

  /** The value, and the entry counts as used; undefined when absent or too old. */
  get(key: K): V | undefined {
    const slot = this.live(key);
    if (!slot) return undefined;
    slot.usedAt = this.clock();
    this.slots.delete(key);
    this.slots.set(key, slot);
    return slot.value;
  }

  /** The value without counting as a use. */
  peek(key: K): V | undefined {
    return this.live(key)?.value;
  }

  has(key: K): boolean {
    return this.live(key) !== undefined;
  }

  set(key: K, value: V): this {
    const now = this.clock();
    this.slots.delete(key);
    this.slots.set(key, { value, usedAt: now });
    this.prune(now);
    return this;
  }

  delete(key: K): boolean {
    return this.slots.delete(key);
  }

  clear(): void {
    this.slots.clear();
  }

  /** Live entries, least recently used first. */
  *entries(): IterableIterator<[K, V]> {
    const now = this.clock();
    for (const [key, slot] of this.slots) if (!this.expired(slot, now)) yield [key, slot.value];
  }

  *keys(): IterableIterator<K> {
    for (const [key] of this.entries()) yield key;
  }

  *values(): IterableIterator<V> {
    for (const [, value] of this.entries()) yield value;
  }

  /** Drop what is past the cap, and what is too old from the least recently used end. */
  prune(now = this.clock()): void {
    for (const [key, slot] of this.slots) {
      if (this.slots.size <= this.bounds.maxEntries && !this.expired(slot, now)) break;
      this.slots.delete(key);
      this.onDrop?.(key, slot.value);
    }
  }

  private live(key: K): Slot<V> | undefined {
    const slot = this.slots.get(key);
    if (!slot) return undefined;
    if (!this.expired(slot, this.clock())) return slot;
    this.slots.delete(key);
    this.onDrop?.(key, slot.value);
    return undefined;
  }

  private expired(slot: Slot<V>, now: number): boolean {
    return this.bounds.maxAgeMs !== undefined && now - slot.usedAt >= this.bounds.maxAgeMs;
  }
}
