import type { ReportResult } from './journal-record';

// What an upstream answer (or the lack of one) means for a device report. Pure, table-tested.
// "unreachable" is exactly what gets journaled on the live path and retried on replay:
// no connection, no answer in time, or a proxy/load balancer saying the server is not there.

export type Outcome =
  | { kind: 'unreachable' }
  | { kind: 'unauthorized' }
  | { kind: 'final'; result: Exclude<ReportResult, 'unauthorized' | 'expired' | 'superseded'> };

export const UNREACHABLE_STATUSES: ReadonlySet<number> = new Set([502, 503, 504]);

/** status: the upstream response status, or undefined when the request failed (refused, reset, timeout). */
export function outcomeOf(status: number | undefined): Outcome {
  if (status === undefined || UNREACHABLE_STATUSES.has(status)) return { kind: 'unreachable' };
  if (status >= 200 && status < 300) return { kind: 'final', result: 'delivered' };
  if (status === 401) return { kind: 'unauthorized' };
  if (status === 409) return { kind: 'final', result: 'aborted' };
  // Another 5xx may pass: keep the report (MaxAge bounds it) rather than drop it on a hiccup.
  if (status >= 500) return { kind: 'unreachable' };
  return { kind: 'final', result: 'rejected' };
}

/** The answer the device expects when the gateway took its report (real-client.md §7.7). */
export function acceptedStatus(kind: 'status' | 'log' | 'inventory'): number {
  return kind === 'inventory' ? 200 : 204;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'content-length', 'expect']);

/** The device's headers worth keeping for a replay (Authorization included), framing dropped. */
export function replayHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}
