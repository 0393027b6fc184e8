// Features.mTLS.EnableCache: devices recently preauthorized with this identity and key
// (gateway 2.0 MEN-6928). In memory, bounded; the oldest entry goes first when full. One entry
// per device that authenticated within the lifetime: its key (SHA-256 hex of identity and
// public key, ~150 B with the Map's share) and when it expires. Entries are kept in
// insertion order, which is expiry order (one lifetime for all, and add re-inserts), so each
// add drops the expired ones from the front: devices that left do not stay until the cap.

const MAX_ENTRIES = 100_000;

export class PreauthorizationCache {
  private readonly until = new Map<string, number>();

  constructor(
    private readonly lifetimeMs: number,
    private readonly now: () => number = Date.now,
    private readonly maxEntries = MAX_ENTRIES,
  ) {}

  has(key: string): boolean {
    const until = this.until.get(key);
    if (until === undefined) return false;
    if (this.now() < until) return true;
    this.until.delete(key);
    return false;
  }

  add(key: string): void {
    this.until.delete(key);
    const now = this.now();
    for (const [oldest, until] of this.until) {
      if (until > now) break;
      this.until.delete(oldest);
    }
    if (this.until.size >= this.maxEntries) this.until.delete(this.until.keys().next().value as string);
    this.until.set(key, now + this.lifetimeMs);
  }

  delete(key: string): void {
    this.until.delete(key);
  }

  get size(): number {
    return this.until.size;
  }
}
