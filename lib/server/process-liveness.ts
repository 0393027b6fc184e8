import { readFileSync } from 'node:fs';

// Whether the process that wrote a cache tmp file, a fill-lock owner record or the journal lock
// still runs. A pid alone does not say: Linux hands out pids and thread ids from one space
// (32768 by default), which a busy box or a test run wraps in minutes, so a dead gateway's pid
// soon names another process or thread and kill(pid, 0) answers "alive" (seen in CI: a killed
// worker's tmp files kept at the next start). The owner's start time (/proc/<pid>/stat, field
// 22, clock ticks since boot) tells them apart; where /proc cannot be read, the pid decides.
// A zombie (killed, not yet reaped: a killed primary's workers wait for init) counts as dead.

export interface ProcessIdentity {
  pid: number;
  /** Start time of the process; absent in records written without it. */
  start?: number;
}

/** State (field 3) and start time (field 22) from /proc/<pid>/stat; undefined off Linux or when gone. */
function procStat(pid: number | 'self'): { state: string; start: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid …": comm may hold spaces and parentheses; fields after it start at 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const start = Number(fields[22 - 3]);
    return Number.isSafeInteger(start) ? { state: fields[0], start } : undefined;
  } catch {
    return undefined;
  }
}

export function startTimeOf(pid: number | 'self'): number | undefined {
  return procStat(pid)?.start;
}

/** This process (read once: a cluster worker loads its own copy of this module). */
export const SELF: ProcessIdentity = { pid: process.pid, start: startTimeOf('self') };

export function processAlive(owner: ProcessIdentity): boolean {
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = procStat(owner.pid);
  if (stat === undefined) return true; // no /proc: the pid decides
  // A killed process stays a zombie until its new parent reaps it: dead all the same.
  if (stat.state === 'Z' || stat.state === 'X') return false;
  return owner.start === undefined || stat.start === owner.start;
}
