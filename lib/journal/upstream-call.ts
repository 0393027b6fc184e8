import http from 'node:http';
import https from 'node:https';
import { GatewayError } from '../http/gateway-error';
import type { Upstream } from '../proxy/upstream';

// One small, complete request body sent to the Mender server on the gateway's keep-alive agent
// (the live report, an auth request, or a journaled report on replay). The answer's headers are
// returned; its body is the caller's to pipe or drain. Errors: connection failures as Node
// reports them, no response headers within UpstreamServer.Timeout as GatewayError
// UPSTREAM_TIMEOUT. Below it, the headers kept of a device's request and of upstream's answer.

/** Answers a load balancer or proxy gives when the server behind it is away: an outage too. */
export const UNREACHABLE_STATUSES: ReadonlySet<number> = new Set([502, 503, 504]);

export interface BufferedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer;
}

export function callUpstream(upstream: Upstream, request: BufferedRequest): Promise<http.IncomingMessage> {
  const target = upstream.target;
  const send = target.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = send({
      protocol: target.protocol,
      hostname: target.hostname.replace(/^\[|\]$/g, ''),
      port: target.port || undefined,
      method: request.method,
      path: request.path,
      agent: upstream.agent,
      headers: { ...request.headers, host: target.host, 'content-length': String(request.body.length) },
    });
    req.setTimeout(upstream.timeoutMs, () => req.destroy(new GatewayError('UPSTREAM_TIMEOUT', 'upstream server timed out')));
    req.once('response', (res) => {
      req.setTimeout(0);
      resolve(res);
    });
    req.once('error', reject);
    req.end(request.body);
  });
}

// Framing and connection headers (RFC 9110 §7.6.1): each hop sets its own.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
]);
// A replay also goes to upstream's own Host, and never waits for a 100 Continue.
const NOT_REPLAYED = new Set([...HOP_BY_HOP, 'host', 'expect']);

/** The device's headers worth keeping for a replay (Authorization included), framing dropped. */
export function replayHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || NOT_REPLAYED.has(name)) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/** Upstream's answer headers to pass on to the device (its framing is the gateway's own). */
export function answerHeaders(headers: http.IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  return out;
}
