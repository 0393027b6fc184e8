import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { pathnameOf, type RequestContext, type RouteLabel } from './route';

import { countRequest } from '../observe/metrics';
import { deploymentOfStatusPath, isTokenCheckedPath } from '../device-api';
import { deviceIdFromAuthorization, statusOfReport } from '../observe/status-page/device-id';
import { statusBoard, type StatusBoard } from '../observe/status-page/status-board';

// Called once per device request, as it starts; the function it returns counts the request
// when its response is done and feeds the status board. The device id is the token's `sub`,
// which the gateway cannot verify, so a device is recorded only when the Mender server vouched
// for that token: a 2xx from upstream on a device API path where it checks the token (not the
// auth requests, which carry none, and not a route the gateway answers itself: the health
// probe, artifact links, refusals). A report the journal took (its header below) counts too: the
// journal takes one only under a token upstream already accepted or issued. A 3xx, or any other
// answer, records nothing: a LAN host's forged `{"sub": …}` never reaches the board.

const MAX_STATUS_BODY = 4096;

/** Called when the response is done, with its status (499: the device left) and bytes written. */
export type RequestObserved = (status: number, bytes: number) => void;

export function observeRequest(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: RequestContext,
  route: RouteLabel,
  board: StatusBoard = statusBoard,
): RequestObserved {
  const deviceId = deviceIdOfConnection(req);
  const deploymentId = deviceId && req.method === 'PUT' ? deploymentOfStatusPath(pathnameOf(req)) : undefined;
  // Only the pass-through pipes the body in this same tick; another route may read it later.
  const report = deploymentId && (route.name === 'pass-through' || route.name === 'deployment-status') ? tapBody(req) : undefined;

  return (status, bytes) => {
    countRequest(req.method, status, route.name, bytes);
    // A report the journal took was answered by the gateway, not upstream.
    if (!route.local && status !== 499 && !res.hasHeader('x-men-gateway-journaled')) board.upstreamAnswered(status);
    if (!deviceId || status < 200 || status >= 300 || route.local || !isTokenCheckedPath(pathnameOf(req))) return;
    board.deviceSeen(deviceId, ctx.clientAddress, `${req.method} ${route.sensitivePath ? `<${route.name}>` : pathnameOf(req)}`);
    const value = report?.();
    if (deploymentId && value) board.deploymentStatus(deviceId, deploymentId, value);
  };
}

// A device sends the same token on every request of a connection until it renews it: the
// JWT is decoded once per connection and token, not on every poll (per-request cost). Weak:
// an entry goes with its socket, one token per connection, so it needs no cap or age.
const decoded = new WeakMap<Socket, { authorization: string; deviceId: string | undefined }>();

function deviceIdOfConnection(req: IncomingMessage): string | undefined {
  const authorization = req.headers.authorization;
  if (!authorization) return undefined;
  const known = decoded.get(req.socket);
  if (known && known.authorization === authorization) return known.deviceId;
  const deviceId = deviceIdFromAuthorization(authorization);
  decoded.set(req.socket, { authorization, deviceId });
  return deviceId;
}

/**
 * Watch a small body go by without consuming it: the listener is added in the same tick as
 * the pass-through's pipe, so both see every chunk (a paused stream starts flowing on the next tick).
 */
function tapBody(req: IncomingMessage): () => string | undefined {
  const chunks: Buffer[] = [];
  let size = 0;
  const onData = (chunk: Buffer): void => {
    size += chunk.length;
    if (size > MAX_STATUS_BODY) req.off('data', onData);
    else chunks.push(chunk);
  };
  req.on('data', onData);
  return () => (size <= MAX_STATUS_BODY ? statusOfReport(Buffer.concat(chunks).toString('utf8')) : undefined);
}
