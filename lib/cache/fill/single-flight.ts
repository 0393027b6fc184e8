// One run per key in this process: the first caller creates the value and starts the work,
// every later caller gets the same value until the work settles (the entry is removed in
// finally). undici's deduplicate and cacache's moveOperations use the same idiom; the file
// lock in artifact-fill does the same job across processes.

export class SingleFlight<T> {
  private readonly inflight = new Map<string, T>();

  get(key: string): T | undefined {
    return this.inflight.get(key);
  }

  get size(): number {
    return this.inflight.size;
  }

  values(): IterableIterator<T> {
    return this.inflight.values();
  }

  /** Join the run for `key`, or start one: `create` makes the shared value, `run` does the work. */
  join(key: string, create: () => T, run: (value: T) => Promise<unknown>): { value: T; started: boolean } {
    const existing = this.inflight.get(key);
    if (existing !== undefined) return { value: existing, started: false };
    const value = create();
    this.inflight.set(key, value);
    let work: Promise<unknown>;
    try {
      work = run(value);
    } catch (err) {
      work = Promise.reject(err);
    }
    work
      .catch(() => undefined)
      .finally(() => {
        if (this.inflight.get(key) === value) this.inflight.delete(key);
      });
    return { value, started: true };
  }
}
