import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { RequestContext } from '../http/route';
import { createForwarder } from './forward';
import type { Upstream } from './upstream';
import { TUNNEL_IDLE_MS, tunnelUpgrade } from './websocket-tunnel';

// Device traffic to the Mender server that no route handles itself: ordinary requests through
// the forwarder (forward.ts, undici), WebSockets through the tunnel (websocket-tunnel.ts), both
// with or without an outbound proxy (upstream.ts decides which dispatcher and dial).

export interface PassThrough {
  web(req: IncomingMessage, res: ServerResponse, ctx: RequestContext): void;
  ws(req: IncomingMessage, socket: Socket, head: Buffer, ctx: RequestContext): void;
}

export interface PassThroughOptions {
  /**
   * Called with the status of every upstream response and the request it answers (the journal
   * learns upstream is back, and which device tokens upstream accepted).
   */
  onUpstreamAnswer?: (status: number, req: IncomingMessage) => void;
  /** A joined WebSocket tunnel whose device or upstream is silent this long is closed (default TUNNEL_IDLE_MS). */
  tunnelIdleMs?: number;
}

export function createPassThrough(upstream: Upstream, options: PassThroughOptions = {}): PassThrough {
  const forwarder = createForwarder(upstream, options);
  const tunnel = {
    dial: upstream.dial,
    host: upstream.target.host,
    timeoutMs: upstream.timeoutMs,
    idleMs: options.tunnelIdleMs ?? TUNNEL_IDLE_MS,
  };
  return {
    web(req, res, ctx) {
      forwarder.forward(req, res, ctx);
    },
    ws(req, socket, head, ctx) {
      socket.on('error', (err) => ctx.log.debug('device websocket error', { err }));
      tunnelUpgrade(tunnel, req, socket, head, ctx);
    },
  };
}
