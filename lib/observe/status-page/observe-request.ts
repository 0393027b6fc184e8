import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestContext } from '../../http/route';
import { pathnameOf } from '../../http/router';
import { countRequest } from '../metrics';
import { deploymentOfStatusPath, deviceIdFromAuthorization, statusOfReport } from './device-id';
import { statusBoard, type StatusBoard } from './status-board';

// Called once per device request, as it starts: counts it when its response is done and feeds
// the status board. A device is recorded only when upstream accepted its request (< 400), so
// the id shown is one the Mender server verified.

const MAX_STATUS_BODY = 4096;

/** Routes whose answer comes from upstream; the others say nothing about its health. */
const LOCAL_ROUTES = new Set(['alive', 'artifact-link']);

export function observeRequest(req: IncomingMessage, res: ServerResponse, ctx: RequestContext, route: { name: string; sensitivePath?: boolean }, board: StatusBoard = statusBoard): void {
  const socket = req.socket;
  const bytesBefore = socket.bytesWritten;
  const pathname = pathnameOf(req);
  const deviceId = deviceIdFromAuthorization(req.headers.authorization);
  const deploymentId = deviceId && req.method === 'PUT' ? deploymentOfStatusPath(pathname) : undefined;
  // Only the pass-through pipes the body in this same tick; another route may read it later.
  const report = deploymentId && (route.name === 'pass-through' || route.name === 'deployment-report') ? tapBody(req) : undefined;

  res.once('close', () => {
    const status = res.headersSent ? res.statusCode : 499;
    countRequest(req.method, status, route.name, socket.bytesWritten - bytesBefore);
    // A report the journal took (issue 10) was answered by the gateway, not upstream.
    if (!LOCAL_ROUTES.has(route.name) && status !== 499 && !res.hasHeader('x-men-gateway-journaled')) board.upstreamAnswered(status);
    if (!deviceId || status >= 400) return;
    board.deviceSeen(deviceId, ctx.clientAddress, `${req.method} ${route.sensitivePath ? `<${route.name}>` : pathname}`);
    const value = report?.();
    if (deploymentId && value) board.deploymentStatus(deviceId, deploymentId, value);
  });
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
