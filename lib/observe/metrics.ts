import type { Registry } from 'prom-client';
import { statusBoard } from './status-page/status-board';
import { Tally, type GaugeReading, type GaugeSeries } from './tally';

// Metrics.* (product doc §7.2): one registry per process, served by the admin listener.
// Every label set is bounded: methods outside the known list become OTHER, routes are the route
// table's names, mTLS refusal reasons are folded into a few kinds. Modules call the typed
// functions below; they also feed the status page's board. The counts are kept in Tallies;
// prom-client is loaded only when the registry is first used (Metrics.Enabled): required
// alone it adds ~12 MB of RSS to a Node process.

const tallies: Tally[] = [];
const gauges: (GaugeReading | GaugeSeries)[] = [];
const tally = (name: string, help: string, labelNames: readonly string[] = []): Tally => {
  const t = new Tally(name, help, labelNames);
  tallies.push(t);
  return t;
};

let registry: Registry | undefined;
let processMetrics = false;
const loadPrometheus = () => require('./prometheus-registry') as typeof import('./prometheus-registry');
function prometheus(): Registry {
  if (registry === undefined) {
    registry = loadPrometheus().buildRegistry(tallies, gauges);
    if (processMetrics) loadPrometheus().addProcessMetrics(registry);
  }
  return registry;
}

/** The Prometheus registry's two members the admin listener needs, built on first use. */
export const metricsRegistry = {
  get contentType(): string {
    return prometheus().contentType;
  },
  metrics(): Promise<string> {
    return prometheus().metrics();
  },
};

/**
 * Node's process metrics (memory, CPU, start time, event loop), collected at scrape time. The
 * registry, and prom-client with it (~2 MB of RSS), is made at the first scrape, not at start:
 * GC and event-loop-lag figures count from then.
 */
export function enableProcessMetrics(): void {
  if (processMetrics) return;
  processMetrics = true;
  if (registry !== undefined) loadPrometheus().addProcessMetrics(registry);
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const httpLabels = ['method', 'code', 'route'] as const;

const requests = tally(
  'mender_gateway_http_requests_total',
  'Requests from devices, by method, status code and matched route.',
  httpLabels,
);
const responseBytes = tally(
  'mender_gateway_http_response_bytes_total',
  'Bytes sent to devices (headers included), by method, status code and matched route.',
  httpLabels,
);
const upstreamErrors = tally(
  'mender_gateway_upstream_errors_total',
  'Responses of 502 (upstream unreachable or failed) and 504 (upstream timed out) sent to devices.',
  ['code'],
);
const inventoryRewrites = tally('mender_gateway_inventory_rewrites_total', 'Device inventory uploads seen by DeviceSystem, by outcome.', [
  'result',
]);
const cacheHits = tally('mender_gateway_cache_hits_total', 'Artifact requests served from a published cache entry.');
const cacheMisses = tally('mender_gateway_cache_misses_total', 'Artifact requests that found no published cache entry.');
const cacheFills = tally('mender_gateway_cache_fills_total', 'Cache fills finished, by result.', ['result']);
const cacheEvictions = tally('mender_gateway_cache_evictions_total', 'Cache entries evicted to make room.');
const cacheHotEvictions = tally(
  'mender_gateway_cache_hot_evictions_total',
  'Cache entries evicted to make room although a device was served from them in the last hour (the cache is too small for what devices download now).',
);
const bytesFetched = tally('mender_gateway_artifact_bytes_fetched_total', 'Artifact bytes fetched from the storage upstream.');
const bytesServed = tally(
  'mender_gateway_artifact_bytes_served_total',
  'Bytes sent to devices on artifact links (the uplink would have carried them without the gateway).',
);
const mtlsAdmissions = tally('mender_gateway_mtls_admissions_total', 'Device requests admitted by client certificate.');
const mtlsRefusals = tally(
  'mender_gateway_mtls_refusals_total',
  'Device connections or requests refused by client certificate, by reason.',
  ['reason'],
);
const mtlsClosed = tally(
  'mender_gateway_mtls_connections_closed_total',
  'Open device connections and WebSocket tunnels closed because their client certificate was no longer admitted (after a CA, blocklist or CRL change, or at NotAfter), by reason.',
  ['reason'],
);

export interface CacheGauges {
  entries: number;
  bytes: number;
  fillsInProgress: number;
}

let cacheGauges: (() => CacheGauges) | undefined;
const gauge = (name: string, help: string, pick: (g: CacheGauges) => number): void => {
  gauges.push({ name, help, read: () => (cacheGauges ? pick(cacheGauges()) : 0) });
};
gauge('mender_gateway_cache_entries', 'Published cache entries.', (g) => g.entries);
gauge('mender_gateway_cache_size_bytes', 'Bytes held by published cache entries.', (g) => g.bytes);
gauge('mender_gateway_cache_fills_in_progress', 'Cache fills running in this process.', (g) => g.fillsInProgress);

export function methodLabel(method: string | undefined): string {
  return method && METHODS.has(method) ? method : 'OTHER';
}

export function countRequest(method: string | undefined, code: number, route: string, bytes: number): void {
  const labels = { method: methodLabel(method), code: String(code), route };
  requests.inc(labels);
  responseBytes.inc(labels, bytes);
  if (code === 502 || code === 504) upstreamErrors.inc({ code: String(code) });
  if (route === 'artifact-link' && code < 300) {
    bytesServed.inc({}, bytes);
    statusBoard.bytesServed += bytes;
  }
}

export function countInventoryRewrite(result: 'rewritten' | 'unchanged' | 'malformed' | 'too_large'): void {
  inventoryRewrites.inc({ result });
}

/** The artifact cache reports through these (lib/cache's modules). */
export const cacheMetrics = {
  watch(read: () => CacheGauges): void {
    cacheGauges = read;
  },
  hit(entryId: string): void {
    cacheHits.inc();
    statusBoard.cacheHit(entryId);
  },
  miss(): void {
    cacheMisses.inc();
  },
  fillDone(ok: boolean): void {
    cacheFills.inc({ result: ok ? 'done' : 'failed' });
  },
  /** hot: a device was served from the entry recently (lib/cache/store/evict-lru.ts decides). */
  evicted(hot = false): void {
    cacheEvictions.inc();
    if (hot) cacheHotEvictions.inc();
  },
  fetched(bytes: number): void {
    bytesFetched.inc({}, bytes);
    statusBoard.bytesFetched += bytes;
  },
};

// Report journal: reports kept while upstream was unreachable and how each ended.
/** The journal's counts, as the journal keeps them and the metrics and status page show them. */
export interface JournalStats {
  queued: number;
  bytes: number;
  devices: number;
  journaled: number;
  replayed: number;
  failed: number;
  superseded: number;
}
/** upstreamDown: the journal's replay holds upstream unreachable (set where the replay runs). */
export type JournalView = JournalStats & { upstreamDown?: boolean };
const journalJournaled = tally(
  'mender_gateway_journal_journaled_total',
  'Device reports answered by the gateway and kept in the journal because upstream was unreachable, by kind.',
  ['kind'],
);
const journalEnded = tally(
  'mender_gateway_journal_ended_total',
  'Journaled reports that left the journal, by result (delivered, aborted, superseded, rejected, unauthorized, expired).',
  ['result'],
);
const journalRefused = tally(
  'mender_gateway_journal_refused_total',
  'Reports not journaled (journal full, the device over its MaxDeviceSize, or unwritable): the device got the upstream error.',
  ['reason'],
);
let journalView: (() => JournalView) | undefined;
gauges.push({
  name: 'mender_gateway_journal_queued',
  help: 'Reports waiting in the journal for upstream.',
  read: () => journalView?.().queued ?? 0,
});
gauges.push({
  name: 'mender_gateway_journal_bytes',
  help: 'Bytes of the reports waiting in the journal.',
  read: () => journalView?.().bytes ?? 0,
});

// Upstream reachability as the gateway last saw it: down when the journal's replay holds it
// unreachable, or when the last answer to a forwarded device request was the gateway's own 502/504
// (the status page's "healthy"). A gateway no device has used yet counts as up.
gauges.push({
  name: 'mender_gateway_upstream_up',
  help: 'Whether the Mender server answered the last forwarded device request (1) or was unreachable (0).',
  read: () => {
    if (journalView?.().upstreamDown) return 0;
    const { lastOk, lastError } = statusBoard.upstream;
    return lastError !== undefined && lastError.at > (lastOk ?? 0) ? 0 : 1;
  },
});

// Devices poll for deployments every 30 minutes by default: one seen in the last hour is active.
export const ACTIVE_DEVICE_MS = 3600_000;
/** Devices the Mender server vouched for in the last hour (the gauge below, the status page's history). */
export function devicesActive(): number {
  // On the board's monotonic clock: a wall clock stepped a day ahead would show none for an hour.
  return statusBoard.seenWithin(ACTIVE_DEVICE_MS);
}
gauges.push({
  name: 'mender_gateway_devices_active',
  help: 'Devices the Mender server vouched for in the last hour (the status page board: at most its 1000 most recent devices).',
  read: () => devicesActive(),
});

/** Requests from devices since start, all methods, codes and routes (the status page's history). */
export function deviceRequests(): number {
  let total = 0;
  for (const { value } of requests.entries()) total += value;
  return total;
}

export const journalMetrics = {
  watch(read: () => JournalView): void {
    journalView = read;
  },
  view(): JournalView | undefined {
    return journalView?.();
  },
  journaled(kind: 'status' | 'log' | 'inventory'): void {
    journalJournaled.inc({ kind });
  },
  ended(result: 'delivered' | 'aborted' | 'superseded' | 'rejected' | 'unauthorized' | 'expired'): void {
    journalEnded.inc({ result });
  },
  failed(reason: 'full' | 'device_full' | 'write_error'): void {
    journalRefused.inc({ reason });
  },
};

/** mTLS refusal reasons are free text (serials, OpenSSL codes): fold them into bounded kinds. */
export function mtlsReasonLabel(reason: string): string {
  if (/^plain HTTP$/.test(reason)) return 'plain_http';
  if (/blocklist/i.test(reason)) return 'blocklisted';
  if (/revoked by the CA's CRL/.test(reason)) return 'revoked';
  if (/no client certificate/i.test(reason)) return 'no_certificate';
  if (/expired/i.test(reason)) return 'expired';
  if (/not.yet.valid/i.test(reason)) return 'not_yet_valid';
  if (/^id_data /.test(reason)) return 'identity_mismatch';
  if (/rejected by the operator/.test(reason)) return 'rejected_by_operator';
  if (/held by another key/.test(reason)) return 'key_replacement';
  return 'untrusted';
}

export const mtlsMetrics = {
  admitted(): void {
    mtlsAdmissions.inc();
  },
  refused(reason: string): void {
    mtlsRefusals.inc({ reason: mtlsReasonLabel(reason) });
  },
  closed(reason: string): void {
    mtlsClosed.inc({ reason: mtlsReasonLabel(reason) });
  },
};

// Dates that end (lib/observe/certificate-expiry.ts sets them): Unix seconds, as Prometheus
// compares them with time(). A date not known (the file not configured) is no series.
export type CertificateName = 'server' | 'client_ca' | 'upstream_ca';
const notAfters = new Map<CertificateName, number>();
let crlNextUpdate: number | undefined;
gauges.push({
  name: 'mender_gateway_certificate_expiry_timestamp_seconds',
  help: "notAfter of the HTTPS listener's server certificate (server), and the earliest notAfter of the mTLS client CA file (client_ca) and of UpstreamServer.CACertificate (upstream_ca), in Unix seconds.",
  labelNames: ['certificate'],
  series: () => [...notAfters].map(([certificate, ms]) => ({ labels: { certificate }, value: Math.floor(ms / 1000) })),
});
gauges.push({
  name: 'mender_gateway_crl_next_update_timestamp_seconds',
  help: 'The earliest nextUpdate among the CRLs of Features.mTLS.CRLPath, in Unix seconds (past it the CRL is still enforced).',
  labelNames: [],
  series: () => (crlNextUpdate === undefined ? [] : [{ labels: {}, value: Math.floor(crlNextUpdate / 1000) }]),
});

export const expiryMetrics = {
  /** `notAfter` in Unix ms; undefined removes the series. */
  certificate(name: CertificateName, notAfter: number | undefined): void {
    if (notAfter === undefined) notAfters.delete(name);
    else notAfters.set(name, notAfter);
  },
  /** The earliest nextUpdate in Unix ms; undefined (no CRL, or none with a nextUpdate) removes the series. */
  crlNextUpdate(at: number | undefined): void {
    crlNextUpdate = at;
  },
};
