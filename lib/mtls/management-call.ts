import http from 'node:http';
import https from 'node:https';
import { GatewayError, upstreamError } from '../http/gateway-error';
import type { Upstream } from '../proxy/upstream';

// One call to the Mender server's management API (login, preauthorize), over the upstream
// keep-alive agent so it shares TLS trust and the outbound proxy with device traffic.
// The answers are small (a JWT, an error or a device record): read with a cap.

export interface ManagementReply {
  status: number;
  body: Buffer;
}

export interface ManagementRequest {
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

const MAX_REPLY_BYTES = 256 * 1024;

export function managementCall(upstream: Upstream, call: ManagementRequest): Promise<ManagementReply> {
  const target = upstream.target;
  const request = target.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...call.headers, Host: target.host };
    if (call.body) headers['Content-Length'] = String(call.body.length);
    const req = request(
      {
        protocol: target.protocol,
        hostname: target.hostname.replace(/^\[|\]$/g, ''),
        port: target.port,
        method: call.method,
        path: call.path,
        headers,
        agent: upstream.agent,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_REPLY_BYTES) {
            req.destroy(
              new GatewayError('UPSTREAM_BAD_RESPONSE', `management API answer to ${call.path} is larger than ${MAX_REPLY_BYTES} bytes`),
            );
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', (err) => reject(upstreamError(err, 'Mender server (management API)')));
      },
    );
    req.setTimeout(upstream.timeoutMs, () => req.destroy(new GatewayError('UPSTREAM_TIMEOUT', 'Mender server (management API) timed out')));
    req.on('error', (err) => reject(upstreamError(err, 'Mender server (management API)')));
    req.end(call.body);
  });
}

/** The error text of a Mender error body, for the log; never the body of a success. */
export function errorText(reply: ManagementReply): string {
  try {
    const parsed = JSON.parse(reply.body.toString('utf8')) as { error?: unknown };
    if (typeof parsed.error === 'string') return parsed.error.slice(0, 200);
  } catch {
    // not JSON
  }
  return `${reply.body.length} bytes`;
}
