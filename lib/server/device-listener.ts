import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { GatewayConfig } from '../config/types';
import { DEVICECONNECT_PATH } from '../device-api';
import { logWhenDone } from '../http/access-log';
import type { ListenerGuard } from '../http/feature';
import { setForwardedHeaders } from '../http/forwarded-headers';
import { rawJsonResponse, refuseSocket, replyError, sendJsonError } from '../http/reply-error';
import { checkRequestTarget } from '../http/request-target';
import { createRequestContext, pathnameOf, type RequestContext } from '../http/route';
import type { RouteTable } from '../http/route-table';
import type { Logger } from '../observe/log';
import { noteOutOfFiles } from '../observe/out-of-files';
import { formatAddress } from './listen-address';
import {
  createDeviceServer,
  DEVICE_TIMEOUTS,
  type DeviceServer,
  type DeviceTimeouts,
  listen,
  type Protocol,
  tlsOptionsFor,
} from './listeners';

// One device listener and a request's path through it, top to bottom: the connection (HTTPS
// with the features' TLS options) → a context (request id, client address) → the features'
// listener guards (mTLS; a refusal is logged and counted under the guard's route name) → the
// request target checked and normalised → the route table (lib/http/route-table.ts) → the
// access log, forwarded headers, the route's handler; a thrown error becomes a status and JSON
// body. Upgrades take the same steps, and only the endpoints that may upgrade are tunnelled.

export interface DeviceListenerOptions {
  protocol: Protocol;
  /** HTTP.Listen or HTTPS.Listen, and its key for messages. */
  listen: string;
  key: string;
  /** The HTTPS listener's certificate settings. */
  https?: GatewayConfig['HTTPS'];
  guards: readonly ListenerGuard[];
  table: RouteTable;
  log: Logger;
  timeouts?: Partial<DeviceTimeouts>;
}

export interface DeviceListener {
  protocol: Protocol;
  server: DeviceServer;
  /** The sockets handed to a WebSocket tunnel (closed apart at shutdown). */
  upgraded: Set<Socket>;
  address: AddressInfo;
  /** The HTTPS listener's TLS options, as a reload replaces the certificate in them. */
  tls?: https.ServerOptions;
}

export async function startDeviceListener(opts: DeviceListenerOptions): Promise<DeviceListener> {
  const { protocol, guards, table, log } = opts;
  let tls: https.ServerOptions | undefined;
  try {
    tls = protocol === 'https' ? Object.assign(tlsOptionsFor(opts.https!), ...guards.map((g) => g.tlsOptions)) : undefined;
  } catch (err) {
    throw new Error(`HTTPS: cannot load server certificate: ${(err as Error).message}`);
  }
  const server = createDeviceServer(protocol, tls, { ...DEVICE_TIMEOUTS, ...opts.timeouts });
  const upgraded = new Set<Socket>();
  for (const guard of guards) guard.attach?.(server as https.Server);
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const ctx = contextFor(req, protocol, log);
    const bytesBefore = req.socket.bytesWritten;
    for (const guard of guards) {
      // A refusal gets its access-log line and metric too, under the guard's route name.
      if (!guard.admitRequest(req, res, ctx)) return void logWhenDone(req, res, ctx, guard.refused, bytesBefore);
    }
    handleRequest(table, req, res, ctx);
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    upgraded.add(socket);
    socket.once('close', () => upgraded.delete(socket));
    const ctx = contextFor(req, protocol, log);
    for (const guard of guards) if (!guard.admitUpgrade(req, socket, ctx)) return;
    handleUpgrade(table, req, socket, head, ctx);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    log.debug('malformed request or TLS failure from device', { err: err.code ?? err.message, client: socket.remoteAddress });
    if (socket.writable && !socket.destroyed && err.code !== 'ECONNRESET') {
      const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      socket.end(rawJsonResponse(status, status === 408 ? 'request timed out' : 'malformed request', randomUUID()));
    } else socket.destroy();
  });
  // The gateway is no forward proxy: CONNECT gets an answer, never a tunnel.
  server.on('connect', (req: IncomingMessage, socket: Socket) => {
    const ctx = contextFor(req, protocol, log);
    ctx.log.warn('CONNECT refused', { client: ctx.clientAddress });
    refuseSocket(socket, 405, 'CONNECT is not supported', ctx.requestId);
  });
  if (protocol === 'https') {
    server.on('tlsClientError', (err: Error, socket: Socket) =>
      log.debug('TLS handshake failed', { err: err.message, client: socket.remoteAddress }),
    );
  }
  const address = await listen(server, opts.listen, opts.key);
  // An accept that fails (descriptors ran out and libuv's reserve was spent) must not crash
  // the process: counted into the out-of-files line; anything else is logged.
  server.on('error', (err: NodeJS.ErrnoException) => {
    if (!noteOutOfFiles(err, 'connections')) log.error('listener error', { listener: protocol, err: err.code ?? err.message });
  });
  log.info('listening', { listener: protocol, address: formatAddress(address.address, address.port) });
  return { protocol, server, upgraded, address, tls };
}

// A device's own X-MEN-RequestID goes to the log and upstream with its requests: printable
// ASCII without spaces, quotes or backslashes (a UUID fits), at most 128 characters; anything
// else is replaced by a fresh UUID, so it cannot forge or break a log line.
const SAFE_REQUEST_ID = /^[!#-[\]-~]{1,128}$/;

function contextFor(req: IncomingMessage, protocol: Protocol, log: Logger): RequestContext {
  let requestId = req.headers['x-men-requestid'];
  if (typeof requestId !== 'string' || !SAFE_REQUEST_ID.test(requestId)) {
    requestId = randomUUID();
    req.headers['x-men-requestid'] = requestId;
  }
  return createRequestContext(requestId, req.socket.remoteAddress ?? '', protocol, log);
}

/** A refused request target: answered 400 before any route, logged under this name (the raw target may be garbage). */
const BAD_TARGET = { name: 'bad-request-target', sensitivePath: true, local: true };

function handleRequest(router: RouteTable, req: IncomingMessage, res: ServerResponse, ctx: RequestContext): void {
  // Routed and forwarded on the same normalised target (lib/http/request-target.ts).
  const target = checkRequestTarget(req.url);
  if (!target.ok) {
    logWhenDone(req, res, ctx, BAD_TARGET);
    req.resume();
    return void sendJsonError(res, 400, target.reason, ctx.requestId, { Connection: 'close' });
  }
  req.url = target.target;
  const route = router.select(req);
  logWhenDone(req, res, ctx, route);
  setForwardedHeaders(req, ctx.clientAddress, ctx.protocol);
  try {
    const done = route.handle(req, res, ctx);
    if (done) done.catch((err: unknown) => replyError(req, res, err, ctx.log));
  } catch (err) {
    replyError(req, res, err, ctx.log);
  }
}

/** Upgrades go through the same check and table; only the paths that may upgrade (deviceconnect) are tunnelled. */
function handleUpgrade(router: RouteTable, req: IncomingMessage, socket: Socket, head: Buffer, ctx: RequestContext): void {
  const target = checkRequestTarget(req.url);
  if (target.ok) req.url = target.target;
  const route = target.ok ? router.selectUpgrade(req) : undefined;
  if (!route) {
    const reason = target.ok ? `upgrade refused: only GET ${DEVICECONNECT_PATH} may upgrade` : target.reason;
    ctx.log.warn('websocket refused', { reason, method: req.method, client: ctx.clientAddress });
    refuseSocket(socket, 400, reason, ctx.requestId);
    return;
  }
  setForwardedHeaders(req, ctx.clientAddress, ctx.protocol);
  ctx.log.info('websocket', { method: req.method, path: pathnameOf(req), route: route.name, client: ctx.clientAddress });
  route.handle(req, socket, head, ctx);
}
