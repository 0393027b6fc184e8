import type { IncomingMessage, ServerResponse } from 'node:http';
import { pathnameOf } from '../http/router';
import type { RequestContext } from '../http/route';
import { observeRequest } from './status-page/observe-request';

/**
 * One line per request once its response is done: request id, method, path without query
 * string, status, bytes written to the device (headers included), duration, client address.
 * Failed and refused requests are warnings, as in the product's log.
 */
export function logWhenDone(req: IncomingMessage, res: ServerResponse, ctx: RequestContext, route: { name: string; sensitivePath?: boolean }): void {
  observeRequest(req, res, ctx, route); // metrics and the status page (issue 7)
  const started = process.hrtime.bigint();
  const socket = req.socket;
  const bytesBefore = socket.bytesWritten;
  res.once('close', () => {
    const status = res.headersSent ? res.statusCode : 499;
    const fields = {
      method: req.method,
      path: route.sensitivePath ? `<${route.name}>` : pathnameOf(req),
      route: route.name,
      status,
      bytes: socket.bytesWritten - bytesBefore,
      duration_ms: Number((process.hrtime.bigint() - started) / 1000n) / 1000,
      client: ctx.clientAddress,
      proto: ctx.protocol,
      completed: res.writableFinished,
    };
    if (status >= 400 || !res.writableFinished) ctx.log.warn('request', fields);
    else ctx.log.info('request', fields);
  });
}
