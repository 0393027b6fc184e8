import http from 'node:http';
import https from 'node:https';
import { GatewayError } from '../http/gateway-error';
import type { Upstream } from '../proxy/upstream';

// One small, complete request body sent to the Mender server on the gateway's keep-alive agent
// (the live report, or a journaled one on replay). The answer's headers are returned; its body
// is the caller's to pipe or drain. Errors: connection failures as Node reports them, no
// response headers within UpstreamServer.Timeout as GatewayError UPSTREAM_TIMEOUT.

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
