import type { IncomingMessage, ServerResponse } from 'node:http';
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
}

export type Handler = (req: IncomingMessage, res: ServerResponse, ctx: RequestContext) => void | Promise<void>;

/** One entry of the route table; the first route whose method and path match handles the request. */
export interface Route {
  /** Bounded label for logs and metrics, never a raw URL. */
  name: string;
  methods: readonly string[];
  match(pathname: string): boolean;
  handle: Handler;
  /** The path itself carries a credential (signed links): logs show the route name instead. */
  sensitivePath?: boolean;
  /** Answered by the gateway itself: says nothing of upstream's health, nor of a device token. */
  local?: boolean;
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
