import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { RequestContext } from '../http/route';
import { dialWithAgent } from './agent-dial';
import { Exchange } from './exchange';
import type { Upstream } from './upstream';
import type { BodyRewrite, Dial } from './upstream-handler';

// The lean path for ordinary device requests to the Mender server: one handler
// object per request, fed by undici's dispatcher (or, behind an outbound proxy, by
// http.request with the tunnel agent). The body streams straight through unless the route
// asked to rewrite a 200 JSON answer, decided from status and headers before any body byte.
// Guards kept from the http-proxy path: upstream cut when the device leaves, a cut upstream
// body cuts the device's response, 502/504 JSON, upstream timeout, no Content-Length
// invention for chunked DELETE/OPTIONS (CVE-2026-29057), Host rewritten to upstream's.

export interface Forwarder {
  forward(req: IncomingMessage, res: ServerResponse, ctx: RequestContext, rewrite?: BodyRewrite): void;
}

// Request headers undici sets itself or refuses; Host becomes upstream's (changeOrigin).
const NOT_FORWARDED = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'expect']);

export interface ForwarderOptions {
  /** Called with the status of every upstream response (the journal learns upstream is back). */
  onUpstreamAnswer?: (status: number) => void;
}

export function createForwarder(upstream: Upstream, options: ForwarderOptions = {}): Forwarder {
  // Chosen at the first request, not at start: undici costs ~18 MB of RSS (its llhttp WASM is
  // compiled as it loads), which an idle gateway need not pay.
  let chosen: Dial | undefined;
  const dial: Dial = (req, headers, hasBody, handler) => {
    chosen ??= upstream.pool ? dialWithPool(upstream.pool) : dialWithAgent(upstream);
    chosen(req, headers, hasBody, handler);
  };
  const onUpstreamAnswer = options.onUpstreamAnswer;
  return {
    forward(req, res, ctx, rewrite) {
      const source = req.headers;
      const headers = upstreamHeaders(source, rewrite !== undefined);
      const hasBody = source['transfer-encoding'] !== undefined || (source['content-length'] !== undefined && source['content-length'] !== '0');
      const exchange = new Exchange(req, res, ctx, rewrite, onUpstreamAnswer);
      res.on('close', exchange.deviceClosed);
      dial(req, headers, hasBody, exchange);
    },
  };
}

/** A device request's headers for upstream (after setForwardedHeaders); Host is the dialer's. */
export function upstreamHeaders(source: IncomingHttpHeaders, forRewrite: boolean): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  for (const name in source) {
    if (!NOT_FORWARDED.has(name)) headers[name] = source[name];
  }
  // Plain JSON is cheaper to read; a server that compresses anyway is decoded by `rewrite`.
  if (forRewrite) headers['accept-encoding'] = 'identity';
  return headers;
}

function dialWithPool(pool: Dispatcher): Dial {
  return (req, headers, hasBody, handler) => {
    // Piped in this tick, like http.request's pipe: a listener added alongside (the status
    // board's report tap) sees every chunk too. undici measures a stream that has ended by the
    // time it writes; an iterable it never measures, so a chunked body stays chunked.
    const piped = hasBody ? req.pipe(new PassThrough()) : null;
    const body = piped && req.headers['transfer-encoding'] !== undefined ? chunksOf(piped) : piped;
    // (undici takes async iterables; its types do not say so)
    const opts: Dispatcher.DispatchOptions = { path: req.url ?? '/', method: req.method as Dispatcher.HttpMethod, headers: headers as Record<string, string>, body: body as Readable | null };
    pool.dispatch(opts, handler as Dispatcher.DispatchHandlers);
  };
}

async function* chunksOf(body: Readable): AsyncGenerator<Buffer> {
  yield* body;
}
