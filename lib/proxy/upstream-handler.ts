import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { BodyTap, RequestContext, ResponseHook } from '../http/route';

// The contracts between the forwarder (forward.ts), the exchange it runs per request
// (exchange.ts) and the routes that use it, apart so none of them imports another for a type.

/** Turns an upstream 200 JSON body into the body to send; throws GatewayError for a 502. */
export type BodyRewrite = (body: Readable, headers: IncomingHttpHeaders, ctx: RequestContext) => Promise<string>;

export type { BodyTap, ResponseHook };

export interface ForwardOptions {
  /** Rewrite a 200 JSON answer (deployments/next). */
  rewrite?: BodyRewrite;
  /**
   * The request body to send instead of the device's (a route read it already): a Buffer goes
   * with its own Content-Length, the device's framing dropped (undici writes it at once: ≈1.5× the
   * rate of the same bytes as a stream, bench/upstream-engines.ts); a stream goes with the
   * device's own framing (Content-Length or chunked).
   */
  body?: Buffer | Readable;
  onResponse?: ResponseHook;
  /** Upstream not reached (nothing sent to the device yet): true if it answered the device itself. */
  onFailure?: (err: Error) => boolean;
}

/** What undici's dispatcher feeds: its DispatchHandlers contract, the part we use. */
export interface UpstreamHandler {
  onConnect(abort: (err?: Error) => void): void;
  onHeaders(status: number, rawHeaders: Buffer[] | string[], resume: () => void, statusText: string): boolean;
  onData(chunk: Buffer): boolean;
  onComplete(): void;
  onError(err: Error): void;
}
