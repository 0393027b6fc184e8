import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../observe/log';

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
}
