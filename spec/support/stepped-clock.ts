import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// A wall clock that a test steps, for a child process (the gateway, a bench's fleet): what a box
// without a real-time clock sees when NTP steps it forward after boot, or back.
//
//   const clock = steppedClock(dir);                       // dir: a folder the test owns
//   const gw = await startGateway({ configFile, env: { ...process.env, ...clock.env } });
//   await clock.step(86_400);                              // the child's Date.now() jumps a day ahead
//   clock.now();                                           // what Date.now() reads in the child now
//   await clock.step(-86_400);                             // and back to the real time
//
// It runs the child under libfaketime (Debian package faketime; support/test-deps.sh), preloaded:
// - the multi-threaded variant (libfaketimeMT.so.1): Node reads the clock from several threads;
// - FAKETIME_DONT_FAKE_MONOTONIC=1: a real step moves only CLOCK_REALTIME (Date.now()), never
//   CLOCK_MONOTONIC (performance.now(), timers, libuv's loop time), so the child's timers stay right;
// - FAKETIME_TIMESTAMP_FILE: the offset from the real time ("+86400", "-3600") in a file that
//   step() rewrites; with `cacheSeconds: 0` (the default) the child reads it at every clock read
//   (about 6 µs each: fine for tests), with N > 0 once per N to N + 1 seconds (whole seconds
//   by the real clock: a soak), and step() then waits N + 1 seconds so the child has seen the
//   step when it resolves (it reads the file at its next clock read after that).
// Every process the child starts (cluster workers) inherits the environment, so the same clock.
// Checked with Node 24: no hang under either variant; Date.now() follows the file, performance.now() does not.

export const FAKETIME_LIBRARY = '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1';

export interface SteppedClock {
  /** Environment for the child: merge it over process.env (LD_PRELOAD and the FAKETIME_ settings). */
  readonly env: Record<string, string>;
  /** The child's offset from the real time, in seconds (0 at first). */
  readonly offsetSeconds: number;
  /** Step the child's wall clock by `seconds` (forward > 0, back < 0), from where it is now. */
  step(seconds: number): Promise<void>;
  /** Put the child back on the real time. */
  reset(): Promise<void>;
  /** What Date.now() reads in the child now (ms). */
  now(): number;
}

export interface SteppedClockOptions {
  /** How long the child may keep the offset before reading the file again (default 0: every read). */
  cacheSeconds?: number;
}

/** A clock for a child process, its timestamp file in `dir`. Throws when libfaketime is missing. */
export function steppedClock(dir: string, options: SteppedClockOptions = {}): SteppedClock {
  if (!existsSync(FAKETIME_LIBRARY)) {
    throw new Error(`${FAKETIME_LIBRARY} is missing: install the Debian package faketime (support/test-deps.sh)`);
  }
  const cacheSeconds = options.cacheSeconds ?? 0;
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'faketime-offset');
  let offset = 0;
  const write = (): void => writeFileSync(file, `${offset >= 0 ? '+' : '-'}${Math.abs(offset)}\n`);
  write();
  const seen = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, cacheSeconds > 0 ? (cacheSeconds + 1) * 1000 + 100 : 0));
  const env: Record<string, string> = {
    LD_PRELOAD: FAKETIME_LIBRARY,
    FAKETIME_DONT_FAKE_MONOTONIC: '1',
    FAKETIME_TIMESTAMP_FILE: file,
    ...(cacheSeconds > 0 ? { FAKETIME_CACHE_DURATION: String(cacheSeconds) } : { FAKETIME_NO_CACHE: '1' }),
  };
  return {
    env,
    get offsetSeconds() {
      return offset;
    },
    step(seconds) {
      if (!Number.isInteger(seconds)) throw new Error(`step: whole seconds only (${seconds})`);
      offset += seconds;
      write();
      return seen();
    },
    reset() {
      offset = 0;
      write();
      return seen();
    },
    now: () => Date.now() + offset * 1000,
  };
}
