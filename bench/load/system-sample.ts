import { readdirSync, readFileSync } from 'node:fs';

// What the machine was doing during a measurement: CPU steal (the hypervisor took the vCPU)
// from /proc/stat, and the load average (other processes on this VM). Both are bursty here
// (peers-and-performance.md §0.5), so every measured round carries its own.

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
  let children: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      children = children.concat(
        readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number),
      );
    }
  } catch {
    // gone already
  }
  return [pid, ...children.flatMap(processTree)];
}

export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

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

/** CPU time (user + system, ms) the processes have used so far, from /proc/PID/stat (100 Hz ticks). */
export function cpuMs(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      // Fields after the command name, which may hold spaces: utime and stime are the 12th and 13th.
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8')
        .replace(/^.*\) /, '')
        .split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone already
    }
  }
  return ticks * 10;
}
