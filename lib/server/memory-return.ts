import type { Server } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Logger } from '../observe/log';

// Memory given back after a spike. glibc's malloc keeps what thousands of closed TLS connections
// freed (OpenSSL's and Node's per-connection allocations, fragmented across its arenas): 10,000
// devices gone, the process stays at the spike's RSS. malloc_trim(0) hands those free pages
// back (measured: bench/README-bench.md, "After the devices leave"); Node has no call for it,
// so it goes through koffi (an FFI with prebuilt binaries) when that is installed. musl (OpenWrt,
// Alpine) has no malloc_trim (its mallocng unmaps freed groups itself; not measured here):
// there nothing is loaded.
// A closed connection's native memory (OpenSSL's SSL object, the socket's wraps) is freed only
// when V8 collects its JavaScript object, which an idle process may not do for minutes: a full
// collection goes first. Measured at 5,000 devices: the trim alone 360 → 180 MB, with the
// collection first 80 MB (68 MB before the devices came).

/** How the watch decides: every `everyMs`, the open connections of the listeners. */
export interface FallRule {
  /** Connections that must have closed since the highest count (or the last trim). */
  fall: number;
  everyMs: number;
}

// A fall of 256 connections is on the order of 8 MB of freed native memory (~30 KB each);
// one trim of a 600 MB heap took well under 100 ms of the event loop (README-bench.md).
export const FALL_RULE: Readonly<FallRule> = { fall: 256, everyMs: 10_000 };

/**
 * Decides after each count whether to trim: when the count is at least `fall` below the highest
 * seen since the last trim, and it has stopped falling fast (less than `fall` since the previous
 * count), so one trim follows a crowd leaving rather than several during it.
 */
export class FallWatch {
  private highest = 0;
  private previous = 0;

  constructor(private readonly fall: number) {}

  /** The connections open now; true: trim now. */
  count(open: number): boolean {
    const settled = this.previous - open < this.fall;
    this.previous = open;
    if (open > this.highest) this.highest = open;
    if (this.highest - open < this.fall || !settled) return false;
    this.highest = open;
    return true;
  }
}

interface GlibcReport {
  header?: { glibcVersionRuntime?: string };
}

/**
 * glibc's malloc_trim (after a full collection) through koffi, or null: not glibc, another
 * malloc preloaded, koffi not installed (an optional dependency; the release carries it only
 * where it has a binary) or failing to load.
 */
export function loadMallocTrim(env: NodeJS.ProcessEnv = process.env, load: (id: string) => unknown = require): (() => number) | null {
  // Another malloc preloaded (jemalloc, mimalloc, tcmalloc): glibc's holds nothing to give back.
  if (/malloc/.test(env.LD_PRELOAD ?? '')) return null;
  const report = process.report?.getReport() as GlibcReport | undefined;
  if (!report?.header?.glibcVersionRuntime) return null;
  try {
    const koffi = load('koffi') as { load(lib: string): { func(signature: string): (pad: number) => number } };
    const trim = koffi.load('libc.so.6').func('int malloc_trim(size_t pad)');
    const gc = fullCollection();
    return () => {
      gc();
      return trim(0);
    };
  } catch {
    return null;
  }
}

/**
 * V8's full collection without --expose-gc on the command line (which would give every module a
 * global `gc`): the flag set at run time exposes `gc` in contexts made after it only, here one
 * of its own.
 */
function fullCollection(): () => void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as (options: object) => void;
  // "last-resort": collections until nothing more is freed, compacting every page (V8's own under
  // memory pressure). A regular one leaves the spike's half-empty pages committed: 2 million objects
  // of which 2 % live, heap 141 MB after a regular one and 9 MB after this (55 ms, Node 24; 22.12 too).
  return () => gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}

function openConnections(servers: readonly Server[]): Promise<number> {
  return Promise.all(servers.map((s) => new Promise<number>((resolve) => s.getConnections((err, n) => resolve(err ? 0 : n))))).then(
    (counts) => counts.reduce((a, b) => a + b, 0),
  );
}

/**
 * Counts the listeners' open connections every `rule.everyMs` and calls `trim` after a fall
 * (FallWatch) and once more at the next count. Without a trim (musl, no koffi) it watches nothing. Returns the stop.
 */
export function watchMemoryReturn(
  servers: readonly Server[],
  log: Logger,
  trim: (() => number) | null = loadMallocTrim(),
  rule: Readonly<FallRule> = FALL_RULE,
): () => void {
  if (!trim) {
    log.debug('memory return after a fall in connections: off (no malloc_trim: not glibc, or koffi not installed)');
    return () => undefined;
  }
  const watch = new FallWatch(rule.fall);
  // A second pass one interval after the first: what the first collection let go of later (its
  // objects' native parts freed after it, V8's pages released by its own threads) goes back too.
  let secondPass = false;
  const timer = setInterval(async () => {
    try {
      const open = await openConnections(servers);
      const pass = watch.count(open) ? 1 : secondPass ? 2 : 0;
      secondPass = pass === 1;
      if (pass === 0) return;
      const rss = process.memoryUsage.rss();
      const start = performance.now();
      trim();
      log.info('returned freed memory to the system after connections closed', {
        connections: open,
        pass,
        rss_mb: Math.round(rss / 1e6),
        rss_after_mb: Math.round(process.memoryUsage.rss() / 1e6),
        pause_ms: Math.round(performance.now() - start),
      });
    } catch (err) {
      // A rejection out of a timer would end the gateway: the memory is not worth it. What
      // failed once (the FFI call, the memory reading) would fail again, so the watch stops.
      clearInterval(timer);
      log.warn('memory return after a fall in connections: failed, turned off', { err: err as Error });
    }
  }, rule.everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
