import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { RequestContext } from '../http/route';
import { Exchange } from './exchange';
import type { Upstream } from './upstream';
import type { ForwardOptions } from './upstream-handler';

// Every device HTTP request to the Mender server: one handler object per request, fed by
// undici's dispatcher (a Pool, or a ProxyAgent behind an outbound proxy). The body streams
// straight through unless the route asked to rewrite a 200 JSON answer, decided from status and
// headers before any body byte; a route that read the body already hands it over instead.
// Guards kept from the http-proxy days: upstream cut when the device leaves, a cut upstream
// body cuts the device's response, 502/504 JSON, upstream timeout, no Content-Length
// invention for chunked DELETE/OPTIONS (CVE-2026-29057), Host rewritten to upstream's.

export interface Forwarder {
  forward(req: IncomingMessage, res: ServerResponse, ctx: RequestContext, options?: ForwardOptions): void;
}

// Request headers undici sets itself or refuses; Host becomes upstream's (changeOrigin).
const NOT_FORWARDED = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'expect']);

export interface ForwarderOptions {
  /**
   * Called with the status of every upstream response and the request it answers (the journal
   * learns upstream is back, and which device tokens upstream accepted).
   */
  onUpstreamAnswer?: (status: number, req: IncomingMessage) => void;
}

const NONE: ForwardOptions = {};

export function createForwarder(upstream: Upstream, options: ForwarderOptions = {}): Forwarder {
  const onUpstreamAnswer = options.onUpstreamAnswer;
  const origin = upstream.target.origin;
  return {
    forward(req, res, ctx, opts = NONE) {
      const source = req.headers;
      const headers = upstreamHeaders(source, opts.rewrite !== undefined);
      const exchange = new Exchange(req, res, ctx, opts, onUpstreamAnswer);
      res.on('close', exchange.deviceClosed);
      let body: Buffer | Readable | AsyncGenerator<Buffer> | null;
      // A body a wrapper read already (ctx.body) goes on in its place.
      const given = opts.body ?? ctx.body;
      if (Buffer.isBuffer(given)) {
        headers['content-length'] = String(given.length);
        body = given;
      } else {
        const chunked = source['transfer-encoding'] !== undefined;
        const hasBody = chunked || (source['content-length'] !== undefined && source['content-length'] !== '0');
        // Piped in this tick, like http.request's pipe: a listener added alongside (the status
        // board's report tap) sees every chunk too. undici measures a stream that has ended by the
        // time it writes; an iterable it never measures, so a chunked body stays chunked.
        const piped = hasBody ? (given ?? req).pipe(new PassThrough()) : null;
        body = piped && chunked ? chunksOf(piped) : piped;
      }
      // (undici takes async iterables; its types do not say so.) `origin` is for the ProxyAgent;
      // a Pool ignores it. Made at the first request, not at start: undici costs ~12-18 MB of
      // RSS (its llhttp WASM is compiled as it loads), which an idle gateway need not pay.
      const dispatch: Dispatcher.DispatchOptions = {
        origin,
        path: req.url ?? '/',
        method: req.method as Dispatcher.HttpMethod,
        headers: headers as Record<string, string>,
        body: body as Readable | null,
      };
      upstream.pool.dispatch(dispatch, exchange as Dispatcher.DispatchHandlers);
    },
  };
}

/** A device request's headers for upstream (after setForwardedHeaders); Host is undici's, upstream's own. */
export function upstreamHeaders(source: IncomingHttpHeaders, forRewrite: boolean): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  for (const name in source) {
    if (!NOT_FORWARDED.has(name)) headers[name] = source[name];
  }
  // Plain JSON is cheaper to read; a server that compresses anyway is decoded by `rewrite`.
  if (forRewrite) headers['accept-encoding'] = 'identity';
  return headers;
}

async function* chunksOf(body: Readable): AsyncGenerator<Buffer> {
  yield* body;
}
