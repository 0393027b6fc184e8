// Features.mTLS.EnableCache: devices recently preauthorized with this identity and key
// (gateway 2.0 MEN-6928). In memory, bounded; the oldest entry goes first when full.

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
    if (this.until.size >= this.maxEntries) this.until.delete(this.until.keys().next().value as string);
    this.until.set(key, this.now() + this.lifetimeMs);
  }

  delete(key: string): void {
    this.until.delete(key);
  }

  get size(): number {
    return this.until.size;
  }
}
