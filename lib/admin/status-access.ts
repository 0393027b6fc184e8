import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { sendJsonError } from '../http/reply-error';
import { isIPv4, isIPv6 } from 'node:net';
import { isLoopbackAddress, isLoopbackListen } from '../server/peer-address';

// Who may read what on the metrics listener. /metrics holds counters only (no device, address or
// URL in any label) and answers every peer, as the product's. The status page and /api/status
// name devices, their addresses and deployments, artifact origins and the upstream URL: a LAN
// host would learn every device id there, so they answer loopback peers only unless the
// operator sets Metrics.StatusPageAllowRemote.
//
// The peer's address is not enough: with `ssh -L 9102:127.0.0.1:9102` the operator's browser
// reaches the page from loopback, and so does any web page it shows that rebinds its own name
// (evil.example) to 127.0.0.1 (DNS rebinding): same origin for the browser, a loopback peer for
// the gateway. Such a request carries the attacker's name in Host, so the status page also wants
// a Host that is this machine as a browser on it names it: localhost, a loopback address, or
// Metrics.Listen's own host. With StatusPageAllowRemote any IP literal too (a page served from an
// IP address is not the attacker's origin); a name other than Metrics.Listen's is still refused.

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

/**
 * Whether the Host of a request to the status page names this listener: localhost, 127.x, [::1]
 * (any port), Metrics.Listen's host, and with StatusPageAllowRemote any IP literal. No Host at
 * all (HTTP/1.0) passes: a browser always sends one.
 */
export function statusHostAllowed(host: string | undefined, listenHost: string | undefined, allowRemote: boolean): boolean {
  if (host === undefined) return true;
  const m = /^(?:\[([0-9A-Fa-f:.]{2,45})\]|([^:[\]]{1,253}))(?::[0-9]{1,5})?$/.exec(host.trim());
  if (!m) return false;
  const v6 = m[1];
  const name = (v6 ?? m[2]!).toLowerCase().replace(/\.$/, '');
  if (v6 !== undefined && !isIPv6(v6)) return false;
  if (name === 'localhost' || isLoopbackAddress(name)) return true;
  if (listenHost !== undefined && name === listenHost.toLowerCase() && !WILDCARDS.has(name)) return true;
  return allowRemote && (v6 !== undefined || isIPv4(name));
}

const WILDCARDS = new Set(['0.0.0.0', '::', '0:0:0:0:0:0:0:0']);

/** 403 JSON to a request whose Host names another site (DNS rebinding). */
export function refuseForeignHost(res: ServerResponse, headers: Record<string, string>, allowRemote: boolean): void {
  sendJsonError(
    res,
    403,
    `the status page and /api/status answer only requests addressed to localhost, a loopback address${allowRemote ? ', an IP address' : ''} or the host of Metrics.Listen; this Host names another site (a guard against DNS rebinding): browse http://localhost:<port>/ or http://127.0.0.1:<port>/`,
    randomUUID(),
    headers,
  );
}
