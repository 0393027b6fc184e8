import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { GatewayError } from './gateway-error';
import type { Logger } from '../observe/log';
import { noteOutOfFiles } from '../observe/out-of-files';
import { repeatedErrors } from '../observe/repeated-lines';

// The only place that turns an error into a response: Mender's error body
// {"error": "...", "request_id": "..."} with X-MEN-RequestID, 5xx details kept in the log.

export function requestIdOf(req: IncomingMessage): string {
  const id = req.headers['x-men-requestid'];
  return typeof id === 'string' ? id : '';
}

export function sendJsonError(
  res: ServerResponse,
  status: number,
  message: string,
  requestId: string,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: message, request_id: requestId });
  res.writeHead(status, {
    ...headers,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'X-MEN-RequestID': requestId,
  });
  res.end(body);
}

/**
 * Answer a raw socket (a refused upgrade, CONNECT) with a JSON error and close it. Node has
 * removed its own error listener from an upgraded socket: a peer's reset must not become an
 * unhandled 'error'.
 */
export function refuseSocket(socket: Socket, status: number, message: string, requestId: string): void {
  socket.on('error', () => undefined);
  socket.end(rawJsonResponse(status, message, requestId));
}

/** A whole HTTP/1.1 error response for a raw socket (malformed requests, refused upgrades, CONNECT). */
export function rawJsonResponse(status: number, message: string, requestId: string): string {
  const body = JSON.stringify({ error: message, request_id: requestId });
  const reason = STATUS_CODES[status] ?? 'Error';
  return `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-MEN-RequestID: ${requestId}\r\nConnection: close\r\n\r\n${body}`;
}

export function replyError(req: IncomingMessage, res: ServerResponse | Socket, err: unknown, log: Logger): void {
  const gwErr = err instanceof GatewayError ? err : new GatewayError('INTERNAL', 'internal error', { cause: err });
  const requestId = requestIdOf(req);
  const fields = { request_id: requestId, code: gwErr.code, status: gwErr.status, cause: (gwErr.cause as Error | undefined)?.message };
  // Out of descriptors: counted into one line a second, not a line per device; the same 5xx
  // message again within a minute is counted into one line too (upstream down for everyone).
  if (!noteOutOfFiles(gwErr.cause, 'requests')) {
    if (gwErr.status >= 500) repeatedErrors.error(log, gwErr.message, fields);
    else log.debug(gwErr.message, fields);
  }
  // An upgrade request has only a raw socket: nothing sensible can be written on it.
  if (!('writeHead' in res)) {
    res.destroy();
    return;
  }
  if (res.destroyed || res.writableEnded) return;
  sendJsonError(res, gwErr.status, gwErr.message, requestId, gwErr.headers);
}
