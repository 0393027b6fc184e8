import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

// CPU time of a set of processes from /proc/<pid>/stat (utime + stime, clock ticks).

const TICKS_PER_S = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** utime + stime of each pid, in ms; a process gone since contributes nothing. */
export function cpuMsOf(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // The command name may hold spaces and parentheses: fields count from the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone
    }
  }
  return (ticks * 1000) / TICKS_PER_S;
}

/** CPU used by `pids()` between now and the call of the returned function, in ms. */
export function cpuWindow(pids: () => number[]): () => number {
  const list = pids();
  const before = cpuMsOf(list);
  return () => cpuMsOf(list) - before;
}
