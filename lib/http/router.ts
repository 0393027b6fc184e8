import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Handler, RequestContext, Route } from './route';

export const ALIVE_PATH = '/api/internal/v1/gateway/alive';

/** Answers the health probe on every listener without touching upstream. */
export const aliveRoute: Route = {
  name: 'alive',
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
}

export function createRouter(routes: readonly Route[], fallback: { name: string; handle: Handler }): Router {
  return {
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
