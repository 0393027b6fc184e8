import { BoundedMap } from '../../state/bounded-map';

// What the status page shows that no other module keeps: devices seen recently, hits per cache
// entry, upstream health, byte totals. In memory, per process, bounded.

export interface DeviceSeen {
  id: string;
  address: string;
  lastSeen: number;
  /** When, on the board's monotonic clock (what "active" is counted on: a clock step leaves it). */
  seenAt: number;
  lastRequest: string;
  deployment?: { id: string; status: string; at: number };
}

export interface UpstreamHealth {
  lastOk?: number;
  lastError?: { at: number; code: number };
  errors: number;
}

// The page lists the devices of the last day; a device silent for longer is not "recent".
// ~900 B each with its request line and deployment: ~0.9 MB at the cap (bench/state-sizes-edge.ts).
const DEVICES = { maxEntries: 1000, maxAgeMs: 24 * 3600_000 };
// Hit counts per cache entry: a cache holds far fewer entries; one not served for a week has
// most likely been evicted. ~200 B each: ~1.9 MB at the cap.
const HIT_COUNTERS = { maxEntries: 10_000, maxAgeMs: 7 * 24 * 3600_000 };

export class StatusBoard {
  private readonly devices: BoundedMap<string, DeviceSeen>;
  private readonly hits: BoundedMap<string, number>;
  readonly upstream: UpstreamHealth = { errors: 0 };
  bytesFetched = 0;
  bytesServed = 0;
  private readonly clock: () => number;
  private readonly startedAt: number;

  /** `clock` ages the entries (monotonic); the times shown are the callers' wall-clock `at`. */
  constructor(clock: () => number = () => performance.now()) {
    this.clock = clock;
    this.startedAt = clock();
    this.devices = new BoundedMap(DEVICES, clock);
    this.hits = new BoundedMap(HIT_COUNTERS, clock);
  }

  /** Since the board was made, on the monotonic clock (a clock step does not change the uptime shown). */
  uptimeMs(): number {
    return this.clock() - this.startedAt;
  }

  /** Entries held, for the tests of the bounds. */
  get sizes(): { devices: number; hits: number } {
    return { devices: this.devices.size, hits: this.hits.size };
  }

  deviceSeen(id: string, address: string, lastRequest: string, at = Date.now()): DeviceSeen {
    // Updated in place (every poll of every device comes here); set again because the map's
    // order is the order of last requests.
    const seen: DeviceSeen = this.devices.peek(id) ?? { id, address, lastSeen: at, seenAt: 0, lastRequest };
    seen.address = address;
    seen.lastSeen = at;
    seen.seenAt = this.clock();
    seen.lastRequest = lastRequest;
    this.devices.set(id, seen);
    return seen;
  }

  deploymentStatus(id: string, deploymentId: string, status: string, at = Date.now()): void {
    const device = this.devices.peek(id);
    if (device) device.deployment = { id: deploymentId, status, at };
  }

  /** Most recent first. */
  recentDevices(limit = 200): DeviceSeen[] {
    return [...this.devices.values()].reverse().slice(0, limit);
  }

  /** Devices seen within the last `ms` on the monotonic clock (the map runs from least to most recent). */
  seenWithin(ms: number): number {
    const since = this.clock() - ms;
    let n = 0;
    for (const d of [...this.devices.values()].reverse()) {
      if (d.seenAt < since) break;
      n++;
    }
    return n;
  }

  cacheHit(entryId: string): void {
    this.hits.set(entryId, (this.hits.peek(entryId) ?? 0) + 1);
  }

  hitsOf(entryId: string): number {
    return this.hits.peek(entryId) ?? 0;
  }

  upstreamAnswered(code: number, at = Date.now()): void {
    if (code === 502 || code === 504) {
      this.upstream.lastError = { at, code };
      this.upstream.errors++;
    } else this.upstream.lastOk = at;
  }
}

/** The process' board (one gateway per process, like the metrics registry). */
export const statusBoard = new StatusBoard();
