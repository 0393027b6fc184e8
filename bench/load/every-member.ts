// One timer for a whole set: each 100 ms tick visits the slice of members due, so every member
// is visited once per period without a timer per member (10,000 devices, 10,000 WebSockets).

const TICK_MS = 100;

export function visitEveryPeriod<T>(members: Set<T>, periodMs: number, visit: (member: T) => void): NodeJS.Timeout {
  let cursor: IterableIterator<T> | undefined;
  return setInterval(() => {
    let n = Math.ceil((members.size * TICK_MS) / periodMs);
    while (n-- > 0) {
      cursor ??= members.values();
      const next = cursor.next();
      if (next.done) {
        cursor = undefined;
        break;
      }
      visit(next.value);
    }
  }, TICK_MS);
}
