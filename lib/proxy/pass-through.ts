import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type httpProxy from 'http-proxy';
import { GatewayError, upstreamError } from '../http/gateway-error';
import { replyError } from '../http/reply-error';
import type { RequestContext } from '../http/route';
import { createForwarder } from './forward';
import type { Upstream } from './upstream';
import { tunnelUpgrade } from './websocket-tunnel';

// Device traffic to the Mender server: ordinary requests through forward.ts, WebSockets (and
// the routes that hand http-proxy a buffered body) through http-proxy, with the guards its
// unmaintained 1.18.1 lacks (see ../shared/STYLE.md §A):
// - its `deleteLength` pass turns a chunked DELETE/OPTIONS into `content-length: 0` while
//   still piping the body: request smuggling (CVE-2026-29057, node-http-proxy#1721). Removed.
// - it aborts upstream on req 'aborted', which Node ≥ 15.5 no longer fires once the body is
//   read (nodejs/node#46666): tie the upstream request to the response's 'close' instead.
// - with no agent it opens a connection per request with `Connection: close`: keep-alive agent.

export interface ProxyServerOptions {
  upstream: Upstream;
  selfHandleResponse?: boolean;
}

type ProxyServer = httpProxy<IncomingMessage, ServerResponse> & { webPasses: { name: string }[] };

/** An http-proxy instance with our guards; used for pass-through and (selfHandleResponse) rewrites. */
export function createProxyServer(options: ProxyServerOptions): ProxyServer {
  const { upstream } = options;
  // Loaded here, not at start: only WebSockets behind an outbound proxy and the buffered-body
  // routes come this way.
  const { createProxyServer: create } = require('http-proxy') as typeof httpProxy;
  const proxy = create<IncomingMessage, ServerResponse>({
    target: upstream.target.href,
    agent: upstream.agent,
    changeOrigin: true,
    xfwd: false,
    ws: true,
    selfHandleResponse: options.selfHandleResponse ?? false,
  }) as ProxyServer;
  proxy.webPasses = proxy.webPasses.filter((pass) => pass.name !== 'deleteLength');

  proxy.on('proxyReq', (proxyReq: ClientRequest, _req, res) => {
    res.on('close', () => {
      if (!res.writableFinished) proxyReq.destroy();
    });
    proxyReq.setTimeout(upstream.timeoutMs, () => {
      proxyReq.destroy(new GatewayError('UPSTREAM_TIMEOUT', 'upstream server timed out'));
    });
  });
  // http-proxy pipes the upstream body with pipe(), which does not pass on a premature end:
  // a body cut by upstream must cut the device's response too, never end it cleanly.
  proxy.on('proxyRes', (proxyRes: IncomingMessage, _req, res) => {
    proxyRes.once('close', () => {
      if (!proxyRes.complete) res.destroy();
    });
  });
  // Without a listener http-proxy rethrows; every call below also passes its own callback.
  proxy.on('error', () => undefined);
  return proxy;
}

export interface PassThrough {
  web(req: IncomingMessage, res: ServerResponse, ctx: RequestContext): void;
  ws(req: IncomingMessage, socket: Socket, head: Buffer, ctx: RequestContext): void;
}

export interface PassThroughOptions {
  /** Called with the status of every upstream response (the journal learns upstream is back). */
  onUpstreamAnswer?: (status: number) => void;
}

export function createPassThrough(upstream: Upstream, options: PassThroughOptions = {}): PassThrough {
  // Ordinary requests take the lean path (forward.ts); WebSockets their own (websocket-tunnel.ts),
  // http-proxy only through an outbound proxy (its tunnel agent), made on first use.
  const forwarder = createForwarder(upstream, options);
  const dial = upstream.dial;
  const tunnel = dial && { dial, host: upstream.target.host, timeoutMs: upstream.timeoutMs };
  let proxy: ProxyServer | undefined;
  return {
    web(req, res, ctx) {
      forwarder.forward(req, res, ctx);
    },
    ws(req, socket, head, ctx) {
      socket.on('error', (err) => ctx.log.debug('device websocket error', { err }));
      if (tunnel) return tunnelUpgrade(tunnel, req, socket, head, ctx);
      proxy ??= createProxyServer({ upstream });
      proxy.ws(req, socket, head, {}, (err) => {
        ctx.log.warn('websocket to upstream failed', { err: (err as NodeJS.ErrnoException).code ?? err.message });
        socket.destroy();
      });
    },
  };
}

/** Upstream failures become 502/504 JSON; a device that already left only gets a log line. */
export function replyProxyError(req: IncomingMessage, res: ServerResponse | Socket, err: unknown, ctx: RequestContext): void {
  if ('writableEnded' in res && (res.destroyed || req.socket.destroyed)) {
    ctx.log.debug('device went away before upstream answered', { status: 499 });
    return;
  }
  replyError(req, res, upstreamError(err), ctx.log);
}
