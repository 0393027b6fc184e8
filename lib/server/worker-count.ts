import type { GatewayConfig } from '../config/types';

// How many worker processes `Workers` asks for. Pure, so the choice is table-tested.
// Auto (0) takes one worker per core only when that is a gain and safe:
//  - one core: a cluster only adds a primary process and IPC;
//  - memory: 256 MiB per worker after 512 MiB kept for the primary, the page cache the artifact
//    cache lives on and the box's other services, counted from the memory the host really
//    gives (MemAvailable or the cgroup limit, lib/server/host-memory.ts), so a box with less
//    than 1 GiB available runs one process. Measured: a worker idles at ~65 MB and
//    peaks at ~105 MB serving 200 HTTPS downloads; one more worker held ~165 MB more at
//    10,000 held WebSockets;
//  - Metrics: counters live in each worker, a scrape would see one worker's share;
//  - mTLS: each worker logs in to the management API, keeps its own preauthorization cache
//    and its own TLS session-ticket keys (a device resuming on another worker does a full
//    handshake), so it stays one process unless Workers says otherwise.
// An explicit count is taken as is. Features.ReportJournal does not limit it: its one writer
// is the cluster primary, the workers hand it their reports (lib/journal/journal-ipc.ts).
// (The error form of a plan is kept for settings that cannot be served; none is refused now.)

export const MEMORY_PER_WORKER = 256 * 1024 * 1024;
export const MAX_WORKERS = 256;
/** Memory the auto rule leaves aside before it counts workers. */
export const MEMORY_RESERVE = 512 * 1024 * 1024;

export interface HostFacts {
  /** os.availableParallelism() */
  cores: number;
  /** Memory available to the gateway: MemAvailable, or the cgroup limit when lower */
  memory: number;
}

export type WorkerPlan = { count: number; reason: string } | { error: string };

type Relevant = Pick<GatewayConfig, 'Workers' | 'Metrics'> & { Features: { mTLS: { Enabled: boolean } } };

export function planWorkers(config: Relevant, host: HostFacts): WorkerPlan {
  if (config.Workers > 1) return { count: config.Workers, reason: 'configured' };
  if (config.Workers === 1) return { count: 1, reason: 'configured' };
  if (host.cores <= 1) return { count: 1, reason: 'auto: one core' };
  if (config.Metrics.Enabled) return { count: 1, reason: 'auto: metrics are per process' };
  if (config.Features.mTLS.Enabled) return { count: 1, reason: 'auto: mTLS state is per process' };
  const byMemory = Math.floor((host.memory - MEMORY_RESERVE) / MEMORY_PER_WORKER);
  if (byMemory < 2)
    return { count: 1, reason: `auto: ${gib(host.memory)} available is under ${gib(MEMORY_RESERVE + 2 * MEMORY_PER_WORKER)}` };
  return { count: Math.min(host.cores, byMemory, MAX_WORKERS), reason: 'auto: one per core' };
}

const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(1)} GiB`;
