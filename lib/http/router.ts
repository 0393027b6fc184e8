import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Handler, RequestContext, Route } from './route';

export const ALIVE_PATH = '/api/internal/v1/gateway/alive';

/** mender-connect's WebSocket (remote terminal, file transfer, port forward): the one device path that upgrades. */
export const DEVICECONNECT_PATH = '/api/devices/v1/deviceconnect/connect';

export type UpgradeHandler = (req: IncomingMessage, socket: Socket, head: Buffer, ctx: RequestContext) => void;

/** An entry of the table for Upgrade requests; a path none matches is refused, never tunnelled. */
export interface UpgradeRoute {
  name: string;
  match(pathname: string): boolean;
  handle: UpgradeHandler;
}

/** The deviceconnect upgrade, handed to `handle` (the tunnel to upstream). */
export function deviceconnectRoute(handle: UpgradeHandler): UpgradeRoute {
  return { name: 'deviceconnect', match: (path) => path === DEVICECONNECT_PATH, handle };
}

/** Answers the health probe on every listener without touching upstream. */
export const aliveRoute: Route = {
  name: 'alive',
  local: true,
  methods: ['GET', 'HEAD'],
  match: (path) => path === ALIVE_PATH,
  handle: (_req, res) => {
    res.writeHead(204).end();
  },
};

/** The pathname of a request target, without query string. */
export function pathnameOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

export interface Router {
  /** The route for a request, or the fallback (pass-through). */
  select(req: IncomingMessage): { name: string; handle: Handler };
  /** The route for an Upgrade request (GET only, as WebSocket asks), or undefined: refused. */
  selectUpgrade(req: IncomingMessage): UpgradeRoute | undefined;
}

// Both select on req.url as lib/http/request-target.ts normalised it (the caller's job).
export function createRouter(
  routes: readonly Route[],
  fallback: { name: string; handle: Handler },
  upgrades: readonly UpgradeRoute[] = [],
): Router {
  return {
    selectUpgrade(req) {
      if (req.method !== 'GET') return undefined;
      const path = pathnameOf(req);
      return upgrades.find((route) => route.match(path));
    },
    select(req) {
      const path = pathnameOf(req);
      const method = req.method ?? 'GET';
      for (const route of routes) {
        if (route.methods.includes(method) && route.match(path)) return route;
      }
      return fallback;
    },
  };
}

export type { Handler, RequestContext, Route, IncomingMessage, ServerResponse };
