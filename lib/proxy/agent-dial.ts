import http from 'node:http';
import https from 'node:https';
import { GatewayError } from '../http/gateway-error';
import type { Dial } from './upstream-handler';
import type { Upstream } from './upstream';

// The forwarder's dialer when upstream is reached through an outbound proxy (the per-origin
// tunnel agent of upstream.ts; undici cannot use an http.Agent): http.request, fed into the
// same handler as undici's dispatcher.

export function dialWithAgent(upstream: Upstream): Dial {
  const target = upstream.target;
  const send = target.protocol === 'https:' ? https.request : http.request;
  const port = target.port || (target.protocol === 'https:' ? 443 : 80);
  return (req, headers, hasBody, handler) => {
    headers.host = target.host;
    // Node frames a DELETE/OPTIONS body only when told to: keep the device's Transfer-Encoding,
    // never turn it into a Content-Length (CVE-2026-29057).
    if (req.headers['transfer-encoding'] !== undefined) headers['transfer-encoding'] = req.headers['transfer-encoding'];
    const proxyReq = send({ agent: upstream.agent, hostname: target.hostname, port, method: req.method, path: req.url, headers });
    let body = false;
    handler.onConnect((err) => proxyReq.destroy(err));
    proxyReq.setTimeout(upstream.timeoutMs, () => proxyReq.destroy(new GatewayError('UPSTREAM_TIMEOUT', 'upstream server timed out')));
    proxyReq.on('error', (err) => {
      if (!body) handler.onError(err);
    });
    proxyReq.on('response', (proxyRes) => {
      body = true;
      handler.onHeaders(proxyRes.statusCode ?? 502, proxyRes.rawHeaders, () => proxyRes.resume(), proxyRes.statusMessage ?? '');
      proxyRes.on('data', (chunk: Buffer) => {
        if (!handler.onData(chunk)) proxyRes.pause();
      });
      proxyRes.on('end', () => handler.onComplete());
      // A body cut by upstream (reset, timeout) must cut the device's response too.
      proxyRes.on('close', () => {
        if (!proxyRes.complete) handler.onError(new Error('upstream response cut short'));
      });
    });
    if (hasBody) req.pipe(proxyReq);
    else proxyReq.end();
  };
}
