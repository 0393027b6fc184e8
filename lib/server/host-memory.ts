import { readFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { join } from 'node:path';
import type { HostFacts } from './worker-count';

// What the host gives the gateway: cores, and the memory it can really use, that is
// MemAvailable (not MemTotal: on a gateway box most RAM belongs to other services) or the
// memory cgroup's limit (a container, a systemd MemoryMax=), whichever is lower. The roots are
// parameters so that tests can lay out /proc and /sys files of their own.

/** cgroup v1 writes a page-aligned "no limit" near 2^63. */
const V1_UNLIMITED = 2 ** 60;

export interface HostRoots {
  proc: string;
  sys: string;
}

const SYSTEM: HostRoots = { proc: '/proc', sys: '/sys' };

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** MemAvailable of /proc/meminfo in bytes, or null where there is none. */
export function availableMemory(roots: HostRoots = SYSTEM): number | null {
  const m = /^MemAvailable:\s+(\d+) kB/m.exec(read(join(roots.proc, 'meminfo')) ?? '');
  return m ? Number(m[1]) * 1024 : null;
}

/** The lowest memory limit of this process's cgroup and its ancestors (v2 memory.max, v1 memory.limit_in_bytes), or null. */
export function cgroupMemoryLimit(roots: HostRoots = SYSTEM): number | null {
  let lowest: number | null = null;
  const take = (text: string | null, unlimitedFrom = Infinity) => {
    const value = text?.trim();
    if (!value || !/^\d+$/.test(value)) return; // "max", missing
    const n = Number(value);
    if (n < unlimitedFrom) lowest = lowest === null ? n : Math.min(lowest, n);
  };
  for (const line of (read(join(roots.proc, 'self', 'cgroup')) ?? '').split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const [, id, controllers, path] = m;
    const v2 = id === '0' && controllers === '';
    const v1 = controllers.split(',').includes('memory');
    if (!v2 && !v1) continue;
    const base = v2 ? join(roots.sys, 'fs', 'cgroup') : join(roots.sys, 'fs', 'cgroup', 'memory');
    // A limit set on a parent (a systemd slice, the container's own cgroup) binds as well.
    for (let p = path; ; p = p.slice(0, p.lastIndexOf('/')) || '/') {
      if (v2) take(read(join(base, p, 'memory.max')));
      else take(read(join(base, p, 'memory.limit_in_bytes')), V1_UNLIMITED);
      if (p === '/' || p === '') break;
    }
  }
  return lowest;
}

export interface HostMemoryFacts extends HostFacts {
  total: number;
  available: number | null;
  cgroupLimit: number | null;
}

export function hostFacts(roots: HostRoots = SYSTEM, cores = availableParallelism(), total = totalmem()): HostMemoryFacts {
  const available = availableMemory(roots);
  const cgroupLimit = cgroupMemoryLimit(roots);
  const memory = Math.min(available ?? total, cgroupLimit ?? Infinity);
  return { cores, memory, total, available, cgroupLimit };
}
