import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { GatewayError, upstreamError } from '../http/gateway-error';
import { replyError } from '../http/reply-error';
import type { RequestContext } from '../http/route';
import { dialWithAgent } from './agent-dial';
import type { Upstream } from './upstream';

// The lean path for ordinary device requests to the Mender server (issue 8): one handler
// object per request, fed by undici's dispatcher (or, behind an outbound proxy, by
// http.request with the tunnel agent). The body streams straight through unless the route
// asked to rewrite a 200 JSON answer, decided from status and headers before any body byte.
// Guards kept from the http-proxy path: upstream cut when the device leaves, a cut upstream
// body cuts the device's response, 502/504 JSON, upstream timeout, no Content-Length
// invention for chunked DELETE/OPTIONS (CVE-2026-29057), Host rewritten to upstream's.

/** Turns an upstream 200 JSON body into the body to send; throws GatewayError for a 502. */
export type BodyRewrite = (body: Readable, headers: IncomingHttpHeaders, ctx: RequestContext) => Promise<string>;

export interface Forwarder {
  forward(req: IncomingMessage, res: ServerResponse, ctx: RequestContext, rewrite?: BodyRewrite): void;
}

/** What a dialer feeds: undici's DispatchHandlers contract, the part we use. */
export interface UpstreamHandler {
  onConnect(abort: (err?: Error) => void): void;
  onHeaders(status: number, rawHeaders: Buffer[] | string[], resume: () => void, statusText: string): boolean;
  onData(chunk: Buffer): boolean;
  onComplete(): void;
  onError(err: Error): void;
}

export type Dial = (req: IncomingMessage, headers: OutgoingHttpHeaders, hasBody: boolean, handler: UpstreamHandler) => void;

// Per connection, or describing a body we replace (RFC 9110 §7.6.1, §8.6, §8.4).
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
const BODY_DESCRIBING = new Set(['content-length', 'content-encoding', 'etag', 'content-md5', 'digest']);
// Request headers undici sets itself or refuses; Host becomes upstream's (changeOrigin).
const NOT_FORWARDED = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'expect']);

export interface ForwarderOptions {
  /** Called with the status of every upstream response (the journal learns upstream is back). */
  onUpstreamAnswer?: (status: number) => void;
}

export function createForwarder(upstream: Upstream, options: ForwarderOptions = {}): Forwarder {
  const dial: Dial = upstream.pool ? dialWithPool(upstream.pool) : dialWithAgent(upstream);
  const onUpstreamAnswer = options.onUpstreamAnswer;
  return {
    forward(req, res, ctx, rewrite) {
      const headers: OutgoingHttpHeaders = {};
      const source = req.headers;
      for (const name in source) {
        if (!NOT_FORWARDED.has(name)) headers[name] = source[name];
      }
      // Plain JSON is cheaper to read; a server that compresses anyway is decoded by `rewrite`.
      if (rewrite) headers['accept-encoding'] = 'identity';
      const hasBody = source['transfer-encoding'] !== undefined || (source['content-length'] !== undefined && source['content-length'] !== '0');
      const exchange = new Exchange(req, res, ctx, rewrite, onUpstreamAnswer);
      res.on('close', exchange.deviceClosed);
      dial(req, headers, hasBody, exchange);
    },
  };
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

class Exchange implements UpstreamHandler {
  private abort?: (err?: Error) => void;
  private resume?: () => void;
  /** Set while a 200 JSON body is being collected for the rewrite. */
  private collected?: PassThrough;
  private done = false;

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly ctx: RequestContext,
    private readonly rewrite: BodyRewrite | undefined,
    private readonly onUpstreamAnswer: ((status: number) => void) | undefined,
  ) {}

  /** The device left before its response was complete: stop upstream too. */
  readonly deviceClosed = (): void => {
    if (this.res.writableFinished || this.done) return;
    this.done = true;
    this.abort?.(new Error('device went away'));
  };

  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
    if (this.done) abort(new Error('device went away'));
  }

  onHeaders(status: number, raw: Buffer[] | string[], resume: () => void, statusText: string): boolean {
    this.onUpstreamAnswer?.(status);
    this.resume = resume;
    const res = this.res;
    if (res.destroyed) return false;
    if (this.rewrite && status === 200 && isJson(raw)) {
      this.collected = new PassThrough();
      this.rewriteBody(this.rewrite, this.collected, headersObject(raw));
      return true;
    }
    const out: string[] = [];
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i].toString();
      if (!HOP_BY_HOP.has(name.toLowerCase())) out.push(name, raw[i + 1].toString('latin1'));
    }
    res.writeHead(status, statusText, out);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.collected) {
      // Small JSON, capped by the rewrite: no backpressure; a refused body was aborted already.
      if (!this.collected.destroyed) this.collected.write(chunk);
      return true;
    }
    if (this.res.write(chunk)) return true;
    this.res.once('drain', this.resume!);
    return false;
  }

  onComplete(): void {
    this.done = true;
    if (this.collected) this.collected.end();
    else this.res.end();
  }

  onError(err: Error): void {
    this.done = true;
    if (this.collected) {
      this.collected.destroy(err);
      return;
    }
    const { req, res, ctx } = this;
    // Upstream broke off a body already under way: the device's response breaks too.
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (res.destroyed || req.socket.destroyed) {
      ctx.log.debug('device went away before upstream answered', { status: 499 });
      return;
    }
    const code = (err as NodeJS.ErrnoException).code;
    replyError(req, res, code === 'UND_ERR_BODY_TIMEOUT' ? new GatewayError('UPSTREAM_TIMEOUT', 'upstream server timed out', { cause: err }) : upstreamError(err), ctx.log);
  }

  private rewriteBody(rewrite: BodyRewrite, body: PassThrough, headers: IncomingHttpHeaders): void {
    const { req, res, ctx } = this;
    rewrite(body, headers, ctx).then(
      (text) => {
        if (res.destroyed) return;
        const out: OutgoingHttpHeaders = {};
        for (const name in headers) {
          if (!HOP_BY_HOP.has(name) && !BODY_DESCRIBING.has(name)) out[name] = headers[name];
        }
        out['content-length'] = Buffer.byteLength(text);
        res.writeHead(200, out);
        res.end(text);
      },
      (err: unknown) => {
        // A body too large or unreadable: stop reading it from upstream.
        if (!this.done) this.abort?.(err as Error);
        replyError(req, res, err, ctx.log);
      },
    );
  }
}

function isJson(raw: Buffer[] | string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === 12 && raw[i].toString().toLowerCase() === 'content-type') return /\bjson\b/i.test(raw[i + 1].toString());
  }
  return false;
}

function headersObject(raw: Buffer[] | string[]): IncomingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toString().toLowerCase();
    const value = raw[i + 1].toString('latin1');
    const prev = out[name];
    out[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : name === 'set-cookie' ? [prev, value] : `${prev}, ${value}`;
  }
  return out;
}
