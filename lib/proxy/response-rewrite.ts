import type { ClientRequest, IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { replyError } from '../http/reply-error';
import type { RequestContext } from '../http/route';
import { createProxyServer, replyProxyError } from './pass-through';
import type { Upstream } from './upstream';

// The second http-proxy instance (selfHandleResponse): same upstream, agent and guards as
// pass-through, but a 200 JSON answer goes through `rewrite` before the device sees it.
// Everything else (204 "no update", the 404 that makes the client fall back from v2 to
// v1, 401, 409, 5xx) is copied through untouched, headers and body.

/** Turns an upstream 200 JSON response into the body to send; throws GatewayError for a 502. */
export type BodyRewrite = (proxyRes: IncomingMessage, ctx: RequestContext) => Promise<string>;

export interface ResponseRewrite {
  web(req: IncomingMessage, res: ServerResponse, ctx: RequestContext): void;
}

// Per connection, or describing a body we replace (RFC 9110 §7.6.1, §8.6, §8.4).
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
const BODY_DESCRIBING = new Set(['content-length', 'content-encoding', 'etag', 'content-md5', 'digest']);

export function createResponseRewrite(upstream: Upstream, rewrite: BodyRewrite): ResponseRewrite {
  const proxy = createProxyServer({ upstream, selfHandleResponse: true });
  const contexts = new WeakMap<IncomingMessage, RequestContext>();

  // Plain JSON is cheaper to read; a server that compresses anyway is decoded by `rewrite`.
  proxy.on('proxyReq', (proxyReq: ClientRequest) => {
    proxyReq.setHeader('accept-encoding', 'identity');
  });

  proxy.on('proxyRes', (proxyRes: IncomingMessage, req: IncomingMessage, res: ServerResponse) => {
    const ctx = contexts.get(req);
    if (!ctx) {
      proxyRes.destroy();
      res.destroy();
      return;
    }
    if (proxyRes.statusCode !== 200 || !/\bjson\b/i.test(String(proxyRes.headers['content-type'] ?? ''))) {
      res.writeHead(proxyRes.statusCode ?? 502, proxyRes.statusMessage, copyHeaders(proxyRes.headers, HOP_BY_HOP));
      proxyRes.pipe(res);
      return;
    }
    rewrite(proxyRes, ctx).then(
      (body) => {
        if (res.destroyed) return;
        const headers = copyHeaders(proxyRes.headers, new Set([...HOP_BY_HOP, ...BODY_DESCRIBING]));
        headers['content-length'] = Buffer.byteLength(body);
        res.writeHead(200, headers);
        res.end(body);
      },
      (err: unknown) => replyError(req, res, err, ctx.log),
    );
  });

  return {
    web(req, res, ctx) {
      contexts.set(req, ctx);
      proxy.web(req, res, {}, (err) => replyProxyError(req, res, err, ctx));
    },
  };
}

function copyHeaders(headers: IncomingHttpHeaders, drop: Set<string>): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !drop.has(name)) out[name] = value;
  }
  return out;
}
