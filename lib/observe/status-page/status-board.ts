// What the status page shows that no other module keeps: devices seen recently, hits per cache
// entry, upstream health, byte totals. In memory, per process, bounded.

export interface DeviceSeen {
  id: string;
  address: string;
  lastSeen: number;
  lastRequest: string;
  deployment?: { id: string; status: string; at: number };
}

export interface UpstreamHealth {
  lastOk?: number;
  lastError?: { at: number; code: number };
  errors: number;
}

const MAX_DEVICES = 1000;
const MAX_HIT_COUNTERS = 10_000;

export class StatusBoard {
  private readonly devices = new Map<string, DeviceSeen>();
  private readonly hits = new Map<string, number>();
  readonly upstream: UpstreamHealth = { errors: 0 };
  bytesFetched = 0;
  bytesServed = 0;
  readonly startedAt = Date.now();

  deviceSeen(id: string, address: string, lastRequest: string, at = Date.now()): DeviceSeen {
    // Updated in place (every poll of every device comes here); re-inserted because the
    // Map's order is the order of last requests.
    const seen: DeviceSeen = this.devices.get(id) ?? { id, address, lastSeen: at, lastRequest };
    seen.address = address;
    seen.lastSeen = at;
    seen.lastRequest = lastRequest;
    this.devices.delete(id);
    this.devices.set(id, seen);
    if (this.devices.size > MAX_DEVICES) this.devices.delete(this.devices.keys().next().value as string);
    return seen;
  }

  deploymentStatus(id: string, deploymentId: string, status: string, at = Date.now()): void {
    const device = this.devices.get(id);
    if (device) device.deployment = { id: deploymentId, status, at };
  }

  /** Most recent first. */
  recentDevices(limit = 200): DeviceSeen[] {
    return [...this.devices.values()].reverse().slice(0, limit);
  }

  cacheHit(entryId: string): void {
    this.hits.set(entryId, (this.hits.get(entryId) ?? 0) + 1);
    if (this.hits.size > MAX_HIT_COUNTERS) this.hits.delete(this.hits.keys().next().value as string);
  }

  hitsOf(entryId: string): number {
    return this.hits.get(entryId) ?? 0;
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
