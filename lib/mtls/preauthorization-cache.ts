import { BoundedMap } from '../state/bounded-map';

// Features.mTLS.EnableCache: devices recently preauthorized with this identity and key
// (gateway 2.0 MEN-6928). In memory, bounded: one entry per device that authenticated within
// the lifetime (its key, SHA-256 hex of identity and public key), gone at the lifetime after
// its add (a lookup does not extend it), the oldest first when full. A device past the cap
// costs one preauthorization call more, so the cap is sized for the box, not the fleet:
// 20,000 authentications within CacheLifetime (1h by default), ~190 B each, ~3.6 MB at the cap.

const MAX_ENTRIES = 20_000;

export class PreauthorizationCache {
  private readonly added: BoundedMap<string, true>;

  constructor(
    lifetimeMs: number,
    /** Monotonic by default: a clock stepped by NTP shortens or lengthens no lifetime. */
    now?: () => number,
    maxEntries = MAX_ENTRIES,
  ) {
    this.added = new BoundedMap({ maxEntries, maxAgeMs: lifetimeMs }, now);
  }

  has(key: string): boolean {
    return this.added.has(key);
  }

  add(key: string): void {
    this.added.set(key, true);
  }

  delete(key: string): void {
    this.added.delete(key);
  }

  get size(): number {
    return this.added.size;
  }
}
