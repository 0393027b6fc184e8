import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Fields, Level, Logger } from '../observe/log';

/** What every handler gets besides req/res. */
export interface RequestContext {
  /** X-MEN-RequestID of the device, or one minted by the gateway. */
  requestId: string;
  /** Logger carrying request_id. */
  log: Logger;
  /** Address of the device (never taken from a header the device sent). */
  clientAddress: string;
  /** The listener the request came in on. */
  protocol: 'http' | 'https';
  /**
   * The request body, when a wrapper has read it already (lib/http/feature.ts): whoever handles
   * the request next takes it from here, not from `req` (requestBody below).
   */
  body?: Buffer | Readable;
  /** What wrappers asked to see of this request's upstream exchange (the forwarder calls them first). */
  upstreamHooks?: UpstreamHooks;
}

/** Sees a copy of the upstream answer's body as it streams to the device. */
export interface BodyTap {
  data(chunk: Buffer): void;
  end(): void;
}

/** A hook answered the device itself: upstream's answer is dropped. */
export const ANSWERED = 'answered';

/** Told of upstream's status and headers before the device is; may ask for a copy of the body, or answer instead. */
export type ResponseHook = (status: number, headers: IncomingHttpHeaders) => BodyTap | typeof ANSWERED | undefined;

export interface UpstreamHooks {
  onResponse?: ResponseHook;
  /** Upstream not reached (nothing sent to the device yet): true if it answered the device itself. */
  onFailure?: (err: Error) => boolean;
}

/** The request is handled through; a rejected promise is answered by the caller (lib/http/reply-error.ts). */
export type Handler = (req: IncomingMessage, res: ServerResponse, ctx: RequestContext) => void | Promise<void>;

/** What the access log, the metrics and the status page know of the route that handled a request. */
export interface RouteLabel {
  /** Bounded label for logs and metrics, never a raw URL. */
  name: string;
  /** The path itself carries a credential (signed links): logs show the route name instead. */
  sensitivePath?: boolean;
  /** Answered by the gateway itself: says nothing of upstream's health, nor of a device token. */
  local?: boolean;
}

/** A request's route: its label and its handler. */
export interface Route extends RouteLabel {
  handle: Handler;
}

/**
 * A request's context. Its logger adds request_id, but the child logger is only made when a
 * line is actually written: most requests log nothing below warn (per-request cost).
 */
export function createRequestContext(requestId: string, clientAddress: string, protocol: 'http' | 'https', base: Logger): RequestContext {
  return { requestId, clientAddress, protocol, log: new RequestLogger(base, requestId) };
}

class RequestLogger implements Logger {
  private made?: Logger;
  constructor(
    private readonly base: Logger,
    private readonly requestId: string,
  ) {}
  private get own(): Logger {
    this.made ??= this.base.child({ request_id: this.requestId });
    return this.made;
  }
  debug(msg: string, fields?: Fields): void {
    if (this.base.enabled('debug')) this.own.debug(msg, fields);
  }
  info(msg: string, fields?: Fields): void {
    if (this.base.enabled('info')) this.own.info(msg, fields);
  }
  warn(msg: string, fields?: Fields): void {
    if (this.base.enabled('warn')) this.own.warn(msg, fields);
  }
  error(msg: string, fields?: Fields): void {
    this.own.error(msg, fields);
  }
  fatal(msg: string, fields?: Fields): void {
    this.own.fatal(msg, fields);
  }
  enabled(level: Level): boolean {
    return this.base.enabled(level);
  }
  setLevel(level: Level): void {
    this.base.setLevel(level);
  }
  get level(): Level {
    return this.base.level;
  }
  child(fields: Fields): Logger {
    return this.own.child(fields);
  }
}

/** The pathname of a request target, without query string. */
export function pathnameOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}
