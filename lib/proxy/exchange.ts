import { STATUS_CODES, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import { GatewayError, upstreamError } from '../http/gateway-error';
import { replyError } from '../http/reply-error';
import { ANSWERED, type RequestContext } from '../http/route';
import type { BodyRewrite, BodyTap, ForwardOptions, UpstreamHandler } from './upstream-handler';

// One device request's answer from upstream (forward.ts): fed by undici's dispatcher, written to
// the device. Streams the body through, or collects a 200 JSON body for the route's rewrite.

// Per connection, or describing a body we replace (RFC 9110 §7.6.1, §8.6, §8.4).
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
const BODY_DESCRIBING = new Set(['content-length', 'content-encoding', 'etag', 'content-md5', 'digest']);

export class Exchange implements UpstreamHandler {
  private abort?: (err?: Error) => void;
  private resume?: () => void;
  /** Set while a 200 JSON body is being collected for the rewrite. */
  private collected?: PassThrough;
  /** The route's and the wrappers' copies of the body (the journal keeps an issued token). */
  private taps: BodyTap[] = [];
  private done = false;
  /** A wrapper's hook answered the device instead of upstream (a kept token during an outage). */
  private answered = false;
  private readonly rewrite?: BodyRewrite;

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly ctx: RequestContext,
    private readonly options: ForwardOptions,
    private readonly onUpstreamAnswer: ((status: number, req: IncomingMessage) => void) | undefined,
  ) {
    this.rewrite = options.rewrite;
  }

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
    this.onUpstreamAnswer?.(status, this.req);
    this.resume = resume;
    const res = this.res;
    if (res.destroyed) return false;
    const hooks = this.ctx.upstreamHooks;
    if (hooks?.onResponse || this.options.onResponse) {
      const headers = headersObject(raw);
      const wrapped = hooks?.onResponse?.(status, headers);
      if (wrapped === ANSWERED) {
        this.answered = this.done = true;
        this.abort?.(new Error('answered by the gateway'));
        return false;
      }
      const own = this.options.onResponse?.(status, headers);
      for (const tap of [wrapped, own]) if (tap && tap !== ANSWERED) this.taps.push(tap);
    }
    if (this.rewrite && status === 200 && isJson(raw)) {
      this.collected = new PassThrough();
      this.rewriteBody(this.rewrite, this.collected, headersObject(raw));
      return true;
    }
    res.writeHead(status, statusText || STATUS_CODES[status], passedHeaders(raw));
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.answered) return false;
    for (const tap of this.taps) tap.data(chunk);
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
    if (this.answered) return;
    this.done = true;
    for (const tap of this.taps) tap.end();
    if (this.collected) this.collected.end();
    else this.res.end();
  }

  onError(err: Error): void {
    if (this.answered) return;
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
    if (this.ctx.upstreamHooks?.onFailure?.(err) || this.options.onFailure?.(err)) return;
    const code = (err as NodeJS.ErrnoException).code;
    replyError(
      req,
      res,
      code === 'UND_ERR_BODY_TIMEOUT'
        ? new GatewayError('UPSTREAM_TIMEOUT', 'upstream server timed out', { cause: err })
        : upstreamError(err),
      ctx.log,
    );
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

/** The upstream answer's headers for the device, as a flat raw list: names keep their case, hop-by-hop ones go. */
export function passedHeaders(raw: Buffer[] | string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toString();
    if (!HOP_BY_HOP.has(name.toLowerCase())) out.push(name, raw[i + 1].toString('latin1'));
  }
  return out;
}

/** Content-Type says JSON (what deployments/next rewrites). */
export function isJson(raw: Buffer[] | string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === 12 && raw[i].toString().toLowerCase() === 'content-type') return /\bjson\b/i.test(raw[i + 1].toString());
  }
  return false;
}

/** Raw headers as Node's IncomingMessage.headers shapes them (lower case; repeats joined, set-cookie a list). */
export function headersObject(raw: Buffer[] | string[]): IncomingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toString().toLowerCase();
    const value = raw[i + 1].toString('latin1');
    const prev = out[name];
    out[name] =
      prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : name === 'set-cookie' ? [prev, value] : `${prev}, ${value}`;
  }
  return out;
}
