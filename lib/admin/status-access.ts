import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { sendJsonError } from '../http/reply-error';
import { isLoopbackListen } from '../server/peer-address';

// Who may read what on the metrics listener. /metrics holds counters only (no device, address or
// URL in any label) and answers every peer, as the product's. The status page and /api/status
// name devices, their addresses and deployments, artifact origins and the upstream URL: a LAN
// host would learn every device id there, so they answer loopback peers only unless the
// operator sets Metrics.StatusPageAllowRemote.

export const STATUS_REMOTE_KEY = 'Metrics.StatusPageAllowRemote';

/** The admin listener's paths any peer may read; everything else is the status page's. */
export const PUBLIC_ADMIN_PATHS: ReadonlySet<string> = new Set(['/metrics']);

/**
 * The start-up (and check-config, and reload) warning: the status page is reachable off loopback.
 * Undefined when it is not (off, loopback only, or bound to loopback).
 */
export function statusPageExposure(metrics: { Enabled: boolean; Listen: string; StatusPageAllowRemote: boolean }): string | undefined {
  if (!metrics.Enabled || !metrics.StatusPageAllowRemote || isLoopbackListen(metrics.Listen)) return undefined;
  return `${STATUS_REMOTE_KEY}: the status page and /api/status (device ids, addresses, deployments) are served to every peer that reaches Metrics.Listen ${metrics.Listen}, without authentication; bind Metrics.Listen to 127.0.0.1 or turn ${STATUS_REMOTE_KEY} off`;
}

/** 403 JSON to a peer off loopback: why, and which key opens the page. */
export function refuseRemotePeer(res: ServerResponse, headers: Record<string, string>): void {
  sendJsonError(
    res,
    403,
    `the status page and /api/status answer loopback peers only (they name devices); set ${STATUS_REMOTE_KEY} to serve them to other peers`,
    randomUUID(),
    headers,
  );
}
