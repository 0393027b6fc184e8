import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { statusBoard } from './status-page/status-board';
import type { JournalStats } from '../journal/report-journal';

// Metrics.* (issue 7, product doc §7.2): one registry per process, served by the admin listener.
// Every label set is bounded: methods outside the known list become OTHER, routes are the route
// table's names, mTLS refusal reasons are folded into a few kinds. Modules call the typed
// functions below; they also feed the status page's board.

export const metricsRegistry = new Registry();

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const httpLabels = ['method', 'code', 'route'] as const;

const requests = new Counter({ name: 'mender_gateway_http_requests_total', help: 'Requests from devices, by method, status code and matched route.', labelNames: httpLabels, registers: [metricsRegistry] });
const responseBytes = new Counter({ name: 'mender_gateway_http_response_bytes_total', help: 'Bytes sent to devices (headers included), by method, status code and matched route.', labelNames: httpLabels, registers: [metricsRegistry] });
const upstreamErrors = new Counter({ name: 'mender_gateway_upstream_errors_total', help: 'Responses of 502 (upstream unreachable or failed) and 504 (upstream timed out) sent to devices.', labelNames: ['code'], registers: [metricsRegistry] });
const inventoryRewrites = new Counter({ name: 'mender_gateway_inventory_rewrites_total', help: 'Device inventory uploads seen by DeviceSystem, by outcome.', labelNames: ['result'], registers: [metricsRegistry] });
const cacheHits = new Counter({ name: 'mender_gateway_cache_hits_total', help: 'Artifact requests served from a published cache entry.', registers: [metricsRegistry] });
const cacheMisses = new Counter({ name: 'mender_gateway_cache_misses_total', help: 'Artifact requests that found no published cache entry.', registers: [metricsRegistry] });
const cacheFills = new Counter({ name: 'mender_gateway_cache_fills_total', help: 'Cache fills finished, by result.', labelNames: ['result'], registers: [metricsRegistry] });
const cacheEvictions = new Counter({ name: 'mender_gateway_cache_evictions_total', help: 'Cache entries evicted to make room.', registers: [metricsRegistry] });
const bytesFetched = new Counter({ name: 'mender_gateway_artifact_bytes_fetched_total', help: 'Artifact bytes fetched from the storage upstream.', registers: [metricsRegistry] });
const bytesServed = new Counter({ name: 'mender_gateway_artifact_bytes_served_total', help: 'Bytes sent to devices on artifact links (the uplink would have carried them without the gateway).', registers: [metricsRegistry] });
const mtlsAdmissions = new Counter({ name: 'mender_gateway_mtls_admissions_total', help: 'Device requests admitted by client certificate.', registers: [metricsRegistry] });
const mtlsRefusals = new Counter({ name: 'mender_gateway_mtls_refusals_total', help: 'Device connections or requests refused by client certificate, by reason.', labelNames: ['reason'], registers: [metricsRegistry] });

export interface CacheGauges {
  entries: number;
  bytes: number;
  fillsInProgress: number;
}

let cacheGauges: (() => CacheGauges) | undefined;
const gauge = (name: string, help: string, pick: (g: CacheGauges) => number): void => {
  new Gauge({
    name,
    help,
    registers: [metricsRegistry],
    collect() {
      this.set(cacheGauges ? pick(cacheGauges()) : 0);
    },
  });
};
gauge('mender_gateway_cache_entries', 'Published cache entries.', (g) => g.entries);
gauge('mender_gateway_cache_size_bytes', 'Bytes held by published cache entries.', (g) => g.bytes);
gauge('mender_gateway_cache_fills_in_progress', 'Cache fills running in this process.', (g) => g.fillsInProgress);

let processMetrics = false;
/** Node's process metrics (memory, CPU, start time, event loop), collected at scrape time. */
export function enableProcessMetrics(): void {
  if (processMetrics) return;
  processMetrics = true;
  collectDefaultMetrics({ register: metricsRegistry });
}

export function methodLabel(method: string | undefined): string {
  return method && METHODS.has(method) ? method : 'OTHER';
}

export function countRequest(method: string | undefined, code: number, route: string, bytes: number): void {
  const labels = { method: methodLabel(method), code: String(code), route };
  requests.inc(labels);
  responseBytes.inc(labels, bytes);
  if (code === 502 || code === 504) upstreamErrors.inc({ code: String(code) });
  if (route === 'artifact-link' && code < 300) {
    bytesServed.inc(bytes);
    statusBoard.bytesServed += bytes;
  }
}

export function countInventoryRewrite(result: 'rewritten' | 'unchanged' | 'malformed' | 'too_large'): void {
  inventoryRewrites.inc({ result });
}

/** The artifact cache reports through these (issue 5's modules). */
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
  evicted(count = 1): void {
    cacheEvictions.inc(count);
  },
  fetched(bytes: number): void {
    bytesFetched.inc(bytes);
    statusBoard.bytesFetched += bytes;
  },
};

// Report journal (issue 10): reports kept while upstream was unreachable and how each ended.
export type JournalView = JournalStats;
const journalJournaled = new Counter({ name: 'mender_gateway_journal_journaled_total', help: 'Device reports answered by the gateway and kept in the journal because upstream was unreachable, by kind.', labelNames: ['kind'], registers: [metricsRegistry] });
const journalEnded = new Counter({ name: 'mender_gateway_journal_ended_total', help: 'Journaled reports that left the journal, by result (delivered, aborted, superseded, rejected, unauthorized, expired).', labelNames: ['result'], registers: [metricsRegistry] });
const journalRefused = new Counter({ name: 'mender_gateway_journal_refused_total', help: 'Reports not journaled (journal full or unwritable): the device got the upstream error.', labelNames: ['reason'], registers: [metricsRegistry] });
let journalView: (() => JournalView) | undefined;
new Gauge({ name: 'mender_gateway_journal_queued', help: 'Reports waiting in the journal for upstream.', registers: [metricsRegistry], collect() { this.set(journalView?.().queued ?? 0); } });
new Gauge({ name: 'mender_gateway_journal_bytes', help: 'Bytes of the reports waiting in the journal.', registers: [metricsRegistry], collect() { this.set(journalView?.().bytes ?? 0); } });

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
  failed(reason: 'full' | 'write_error'): void {
    journalRefused.inc({ reason });
  },
};

/** mTLS refusal reasons are free text (serials, OpenSSL codes): fold them into bounded kinds. */
export function mtlsReasonLabel(reason: string): string {
  if (/blocklist/i.test(reason)) return 'blocklisted';
  if (/no client certificate/i.test(reason)) return 'no_certificate';
  if (/expired/i.test(reason)) return 'expired';
  if (/not.yet.valid/i.test(reason)) return 'not_yet_valid';
  return 'untrusted';
}

export const mtlsMetrics = {
  admitted(): void {
    mtlsAdmissions.inc();
  },
  refused(reason: string): void {
    mtlsRefusals.inc({ reason: mtlsReasonLabel(reason) });
  },
};
