import type { Fields, Logger } from './log';

// The same error for every device at once (upstream down: each poll answered 502) would be a
// line per request for as long as it lasts, on a box whose log is small flash. The first line of
// a kind is written at once; the same message again within the window is counted, and one line
// when the window closes (or the gateway closes) says how many more there were. That line carries
// what the repeats share (cause, code, status), never one request's id: each request has its own
// access-log line, so nothing is lost but the repetition. Windows run on the monotonic clock.

const WINDOW_MS = 60_000;
/** Messages counted at once; one more kind beyond them is logged as it comes. */
const MAX_KINDS = 64;
/** The fields a summary keeps: what the repeats have in common, not one request's (request_id). */
const SHARED_FIELDS: ReadonlySet<string> = new Set(['cause', 'code', 'status']);

function shared(fields: Fields): Fields {
  return Object.fromEntries(Object.entries(fields).filter(([k]) => SHARED_FIELDS.has(k)));
}

interface Pending {
  log: Logger;
  first: number;
  more: number;
  fields: Fields;
}

export class RepeatedLines {
  private readonly pending = new Map<string, Pending>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly windowMs = WINDOW_MS,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /** Log `msg` at error, or count it if the same message was logged within the window. */
  error(log: Logger, msg: string, fields: Fields): void {
    const known = this.pending.get(msg);
    if (known) {
      known.more++;
      known.log = log;
      known.fields = shared(fields);
      return;
    }
    log.error(msg, fields);
    if (this.pending.size >= MAX_KINDS) return;
    this.pending.set(msg, { log, first: this.clock(), more: 0, fields: shared(fields) });
    this.timer ??= setTimeout(() => this.flush(), this.windowMs).unref();
  }

  /** Close the windows that are over (all: every one, at close): a line for each message that came again. */
  flush(all = false): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const now = this.clock();
    for (const [msg, p] of this.pending) {
      if (!all && now - p.first < this.windowMs) continue;
      this.pending.delete(msg);
      if (p.more > 0)
        p.log.error(`${msg} (${p.more} more in the last ${Math.round((now - p.first) / 1000)} s; each is in the access log)`, {
          // A request's logger adds its request_id; undefined leaves it out of the line.
          request_id: undefined,
          ...p.fields,
          repeated: p.more,
        });
    }
    if (this.pending.size > 0) {
      const oldest = Math.min(...[...this.pending.values()].map((p) => p.first));
      this.timer = setTimeout(() => this.flush(), Math.max(0, oldest + this.windowMs - now)).unref();
    }
  }
}

/** The process's one counter of repeated error lines (the request path's 5xx answers). */
export const repeatedErrors = new RepeatedLines();
