import type { IncomingMessage, ServerResponse } from 'node:http';
import { pathnameOf, type RequestContext, type RouteLabel } from './route';
import { observeRequest } from './observe-request';

/**
 * One line per request once its response is done: request id, method, path without query
 * string, status, bytes written to the device (headers included), duration, client address.
 * Failed and refused requests are warnings, as in the product's log. One 'close' listener
 * serves the line, the metrics and the status page; fields are built only when the line is
 * written (at LogLevel warn a good request costs a comparison).
 */
export function logWhenDone(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: RequestContext,
  route: RouteLabel,
  /** The socket's count before this response (a guard that refused it has written it already). */
  bytesBefore = req.socket.bytesWritten,
): void {
  const socket = req.socket;
  const started = performance.now();
  const observed = observeRequest(req, res, ctx, route); // metrics and the status page
  res.on('close', () => {
    const status = res.headersSent ? res.statusCode : 499;
    const bytes = socket.bytesWritten - bytesBefore;
    observed(status, bytes);
    const completed = res.writableFinished;
    const warn = status >= 400 || !completed;
    if (!ctx.log.enabled(warn ? 'warn' : 'info')) return;
    const fields = {
      method: req.method,
      path: route.sensitivePath ? `<${route.name}>` : pathnameOf(req),
      route: route.name,
      status,
      bytes,
      duration_ms: Math.round((performance.now() - started) * 1000) / 1000,
      client: ctx.clientAddress,
      proto: ctx.protocol,
      completed,
    };
    if (warn) ctx.log.warn('request', fields);
    else ctx.log.info('request', fields);
  });
}
