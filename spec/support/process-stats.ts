import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

// Processes seen from the outside, through /proc: a process and its descendants (a cluster
// primary and its workers, nginx's master and workers), their resident memory and CPU time; and
// what the machine was doing meanwhile: CPU steal (the hypervisor took the vCPU) from /proc/stat
// and the load average (other processes on this VM). Both are bursty on shared machines, so every
// measured round of a benchmark carries its own. Tests and benchmarks read the same figures here.

export interface CpuSnapshot {
  steal: number;
  total: number;
}

export interface SystemNote {
  /** % of CPU time stolen during the window. */
  stealPct: number;
  /** 1-minute load average at the end of the window. */
  load1: number;
}

export function cpuSnapshot(): CpuSnapshot {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return { steal: cpu[7] ?? 0, total: cpu.reduce((a, b) => a + b, 0) };
}

export function systemNoteSince(before: CpuSnapshot): SystemNote {
  const after = cpuSnapshot();
  const load1 = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  return { stealPct: (100 * (after.steal - before.steal)) / Math.max(1, after.total - before.total), load1 };
}

/** `pid` and every descendant (a cluster primary and its workers; nginx's master and workers). */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    try {
      for (const task of readdirSync(`/proc/${out[i]}/task`)) {
        const kids = readFileSync(`/proc/${out[i]}/task/${task}/children`, 'utf8').trim();
        if (kids) out.push(...kids.split(/\s+/).map(Number));
      }
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

const statusKiB = (pid: number, field: 'VmRSS' | 'VmHWM'): number => {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
};

/** Resident set size of a process in bytes; 0 once it is gone. */
export const rssBytes = (pid: number): number => statusKiB(pid, 'VmRSS') * 1024;

/** The highest resident set size the process has had (the kernel's VmHWM), in bytes. */
export const peakRssBytes = (pid: number): number => statusKiB(pid, 'VmHWM') * 1024;

/** Sample RSS of `pids()` every `everyMs`; stop() returns the peak of the sum, peakEach() each process's own peak. */
export function sampleRss(pids: () => number[], everyMs = 1000): { stop(): number; peakEach(): Map<number, number> } {
  let peak = 0;
  const each = new Map<number, number>();
  const take = () => {
    let sum = 0;
    for (const pid of pids()) {
      const rss = rssBytes(pid);
      sum += rss;
      each.set(pid, Math.max(each.get(pid) ?? 0, rss));
    }
    peak = Math.max(peak, sum);
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return peak;
    },
    peakEach: () => each,
  };
}

const TICKS_PER_S = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** CPU time (user + system, ms) the processes have used so far, from /proc/PID/stat; a process gone contributes nothing. */
export function cpuMs(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // The command name may hold spaces and parentheses: fields count from the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone already
    }
  }
  return (ticks * 1000) / TICKS_PER_S;
}

/** CPU used by `pids()` (listed now) between now and the call of the returned function, in ms. */
export function cpuWindow(pids: () => number[]): () => number {
  const list = pids();
  const before = cpuMs(list);
  return () => cpuMs(list) - before;
}
