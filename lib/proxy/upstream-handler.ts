import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { RequestContext } from '../http/route';

// The contracts between the forwarder (forward.ts), the exchange it runs per request
// (exchange.ts) and the dialers that feed it (undici's dispatcher, agent-dial.ts), apart so
// none of them imports another for a type.

/** Turns an upstream 200 JSON body into the body to send; throws GatewayError for a 502. */
export type BodyRewrite = (body: Readable, headers: IncomingHttpHeaders, ctx: RequestContext) => Promise<string>;

/** What a dialer feeds: undici's DispatchHandlers contract, the part we use. */
export interface UpstreamHandler {
  onConnect(abort: (err?: Error) => void): void;
  onHeaders(status: number, rawHeaders: Buffer[] | string[], resume: () => void, statusText: string): boolean;
  onData(chunk: Buffer): boolean;
  onComplete(): void;
  onError(err: Error): void;
}

export type Dial = (req: IncomingMessage, headers: OutgoingHttpHeaders, hasBody: boolean, handler: UpstreamHandler) => void;
