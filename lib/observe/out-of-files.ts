import { readdir, readFile } from 'node:fs/promises';
import type { Logger } from './log';

// Running out of file descriptors. Every place that meets EMFILE/ENFILE (an upstream
// connection, a WebSocket dial, a listener's accept) reports it here instead of logging a line
// per connection: one line a second at most, with what was refused since the last one. libuv
// itself refuses a burst of new connections in silence (it accepts and closes the backlog with
// a reserve descriptor), so a watch also reports when the descriptors in use reach the limit.

export function isOutOfFiles(err: unknown): boolean {
  for (let e = err as { code?: string; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (e.code === 'EMFILE' || e.code === 'ENFILE') return true;
  }
  return false;
}

export interface OpenFileLimit {
  soft: number;
  hard: number;
}

/** "Max open files" of /proc/self/limits (Node has no getrlimit); null where it cannot be read. */
export function parseOpenFileLimit(limits: string): OpenFileLimit | null {
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(limits);
  if (!m) return null;
  const n = (v: string) => (v === 'unlimited' ? Infinity : Number(v));
  return { soft: n(m[1]), hard: n(m[2]) };
}

/** Descriptors kept aside for listeners, cache files, logs, the journal and Node itself. */
export const RESERVED_FILES = 64;

/** Devices one process can serve at once: each proxied device holds its socket and one upstream. */
export function devicesServed(softLimit: number): number {
  return Math.max(0, Math.floor((softLimit - RESERVED_FILES) / 2));
}

export class OutOfFilesAlarm {
  // Keyed by the few places that meet EMFILE/ENFILE and the code; emptied at every line.
  private counts = new Map<string, number>();
  private inUse: number | null = null;
  private lastLine = -Infinity;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly log: Logger,
    private readonly limit: number | null,
    private readonly everyMs = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  /** One refusal of `what` ("upstream connections", "websocket dials"...). */
  note(what: string, code = 'EMFILE'): void {
    this.counts.set(`${what} (${code})`, (this.counts.get(`${what} (${code})`) ?? 0) + 1);
    this.soon();
  }

  /** The watch saw `inUse` descriptors open, at the limit. */
  atLimit(inUse: number): void {
    this.inUse = inUse;
    this.soon();
  }

  private soon(): void {
    const wait = this.lastLine + this.everyMs - this.now();
    if (wait <= 0) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), wait).unref();
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.counts.size === 0 && this.inUse === null) return;
    const since = Number.isFinite(this.lastLine) ? ` in the last ${((this.now() - this.lastLine) / 1000).toFixed(1)} s` : '';
    const parts = [...this.counts].map(([what, n]) => `${n} ${what} refused${since}`);
    if (this.inUse !== null) parts.push(`${this.inUse} descriptors in use, new connections are being refused`);
    this.log.error(
      `out of file descriptors (open-file limit ${this.limit ?? 'unknown'}): ${parts.join('; ')}; existing connections go on, new ones are taken again as descriptors free up`,
    );
    this.counts.clear();
    this.inUse = null;
    this.lastLine = this.now();
  }
}

let alarm: OutOfFilesAlarm | null = null;

/** Where refusals are reported from now on (the gateway's logger, at start). */
export function watchOutOfFiles(log: Logger, limit: number | null, watchMs = 2000): () => void {
  alarm = new OutOfFilesAlarm(log, limit);
  if (limit === null || !Number.isFinite(limit)) return () => undefined;
  // Silent refusals by libuv show only as descriptors in use at the limit.
  const timer = setInterval(() => {
    readdir('/proc/self/fd').then(
      (fds) => {
        if (fds.length >= limit - 8) alarm?.atLimit(fds.length);
      },
      (err) => isOutOfFiles(err) && alarm?.atLimit(limit),
    );
  }, watchMs).unref();
  return () => clearInterval(timer);
}

/** Report an EMFILE/ENFILE; false (and nothing done) for any other error. */
export function noteOutOfFiles(err: unknown, what: string): boolean {
  // Before watchOutOfFiles (the gateway run as a library): the caller logs as usual.
  if (!alarm || !isOutOfFiles(err)) return false;
  let e = err as { code?: string; cause?: unknown };
  while (e.code !== 'EMFILE' && e.code !== 'ENFILE' && e.cause) e = e.cause as typeof e;
  alarm.note(what, e.code);
  return true;
}

export async function readOpenFileLimit(path = '/proc/self/limits'): Promise<OpenFileLimit | null> {
  try {
    return parseOpenFileLimit(await readFile(path, 'utf8'));
  } catch {
    return null;
  }
}
