import { journalMetrics } from '../metrics';
import { statusBoard, type StatusBoard } from './status-board';

// The JSON behind the status page (GET /api/status on the admin listener). Times are ISO
// strings, sizes bytes; the page renders exactly this, so both always agree.

/** What the status page needs from the artifact cache (lib/cache's ArtifactCache, adapted). */
export interface CacheView {
  entries(): { id: string; key: string; size: number; lastServed: number }[];
  fills(): { id: string; key: string; size: number; written: number; state: string }[];
}

export interface StatusSources {
  version: string;
  upstreamUrl: string;
  cache?: CacheView;
}

export interface StatusSnapshot {
  generated_at: string;
  version: string;
  uptime_seconds: number;
  devices: {
    id: string;
    address: string;
    last_seen: string;
    last_request: string;
    deployment: { id: string; status: string; at: string } | null;
  }[];
  cache: {
    enabled: boolean;
    entries: { artifact: string; size: number; hits: number; last_served: string }[];
    fills: { artifact: string; size: number; written: number; state: string }[];
    bytes_fetched_upstream: number;
    bytes_served_to_devices: number;
    bytes_saved: number;
  };
  upstream: {
    url: string;
    healthy: boolean | null;
    last_ok: string | null;
    last_error: { at: string; code: number } | null;
    errors: number;
  };
  /** Reports kept while upstream was unreachable; replayed and failed count since start. */
  journal: { enabled: boolean; queued: number; devices: number; bytes: number; replayed: number; failed: number };
}

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

export function statusSnapshot(sources: StatusSources, board: StatusBoard = statusBoard, now = Date.now()): StatusSnapshot {
  const up = board.upstream;
  const entries = sources.cache?.entries() ?? [];
  return {
    generated_at: new Date(now).toISOString(),
    version: sources.version,
    uptime_seconds: Math.round(board.uptimeMs() / 1000),
    devices: board.recentDevices().map((d) => ({
      id: d.id,
      address: d.address,
      last_seen: new Date(d.lastSeen).toISOString(),
      last_request: d.lastRequest,
      deployment: d.deployment ? { id: d.deployment.id, status: d.deployment.status, at: new Date(d.deployment.at).toISOString() } : null,
    })),
    cache: {
      enabled: sources.cache !== undefined,
      entries: entries
        .sort((a, b) => b.lastServed - a.lastServed)
        .map((e) => ({ artifact: e.key, size: e.size, hits: board.hitsOf(e.id), last_served: new Date(e.lastServed).toISOString() })),
      fills: (sources.cache?.fills() ?? []).map((f) => ({ artifact: f.key, size: f.size, written: f.written, state: f.state })),
      bytes_fetched_upstream: board.bytesFetched,
      bytes_served_to_devices: board.bytesServed,
      // Only the cache saves uplink bytes; without it every served byte was fetched.
      bytes_saved: sources.cache ? Math.max(0, board.bytesServed - board.bytesFetched) : 0,
    },
    upstream: {
      url: sources.upstreamUrl,
      healthy: up.lastOk === undefined && up.lastError === undefined ? null : (up.lastOk ?? 0) >= (up.lastError?.at ?? 0),
      last_ok: iso(up.lastOk),
      last_error: up.lastError ? { at: new Date(up.lastError.at).toISOString(), code: up.lastError.code } : null,
      errors: up.errors,
    },
    journal: journalSnapshot(),
  };
}

function journalSnapshot(): StatusSnapshot['journal'] {
  const j = journalMetrics.view();
  return j
    ? { enabled: true, queued: j.queued, devices: j.devices, bytes: j.bytes, replayed: j.replayed, failed: j.failed }
    : { enabled: false, queued: 0, devices: 0, bytes: 0, replayed: 0, failed: 0 };
}
