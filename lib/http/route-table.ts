import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { ENDPOINTS, type Endpoint, type EndpointName } from '../device-api';
import { type Feature, WRAPPER_STAGES } from './feature';
import { type Handler, pathnameOf, type RequestContext, type Route } from './route';

// The one route table: every endpoint of the device API table (lib/device-api.ts), answered by
// the feature that claims it or else by the pass-through, inside the wrappers features put
// around it (body stage outermost). Built once at start; a request is matched on its method and
// normalised path (lib/http/request-target.ts runs first). Two features claiming one endpoint,
// or one stage of it, is a start-up error: behaviour never depends on the order of the list.

export type UpgradeHandler = (req: IncomingMessage, socket: Socket, head: Buffer, ctx: RequestContext) => void;

export interface UpgradeRoute {
  name: string;
  handle: UpgradeHandler;
}

export interface RouteTable {
  /** The route for a request: its endpoint's, or the pass-through. */
  select(req: IncomingMessage): Route;
  /** The route for an Upgrade request (GET on an endpoint that may upgrade), or undefined: refused. */
  selectUpgrade(req: IncomingMessage): UpgradeRoute | undefined;
}

export interface Fallbacks {
  /** Everything no endpoint claims, and the endpoints no feature answers: forwarded upstream. */
  web: Handler;
  /** The endpoints that may upgrade: tunnelled upstream. */
  ws: UpgradeHandler;
  /** Endpoints the gateway answers itself whatever the features (the health probe). */
  own?: Partial<Record<EndpointName, Handler>>;
}

export function buildRouteTable(features: readonly Feature[], fallbacks: Fallbacks): RouteTable {
  const routes = new Map<EndpointName, Route>();
  for (const endpoint of ENDPOINTS) {
    if (endpoint.upgrade) continue;
    // `local` only when the gateway answers it: an endpoint no feature claims goes upstream, and
    // upstream's answer says something of upstream (the status board counts it).
    const answered = features.some((f) => f.handlers?.[endpoint.name]) || fallbacks.own?.[endpoint.name] !== undefined;
    routes.set(endpoint.name, {
      name: endpoint.name,
      sensitivePath: endpoint.sensitivePath,
      local: answered && endpoint.local,
      handle: handlerOf(endpoint),
    });
  }
  const passThrough: Route = { name: 'pass-through', handle: fallbacks.web };
  const upgrades = ENDPOINTS.filter((e) => e.upgrade).map((e) => ({ endpoint: e, route: { name: e.name, handle: fallbacks.ws } }));

  function handlerOf(endpoint: Endpoint): Handler {
    const owners = features.filter((f) => f.handlers?.[endpoint.name]);
    if (owners.length > 1) throw new Error(`${endpoint.name} is answered by both ${owners[0]!.name} and ${owners[1]!.name}`);
    let handle = owners[0]?.handlers?.[endpoint.name] ?? fallbacks.own?.[endpoint.name] ?? fallbacks.web;
    // Innermost first: the delivery stage sits right around the handler, the body stage outside it.
    for (const stage of [...WRAPPER_STAGES].reverse()) {
      const wrapping = features.filter((f) => f.wrappers?.[endpoint.name]?.stage === stage);
      if (wrapping.length > 1)
        throw new Error(`${endpoint.name}: both ${wrapping[0]!.name} and ${wrapping[1]!.name} wrap its ${stage} stage`);
      const wrapper = wrapping[0]?.wrappers?.[endpoint.name];
      if (wrapper) handle = wrapper.wrap(handle);
    }
    return handle;
  }

  return {
    select(req) {
      const path = pathnameOf(req);
      const method = req.method ?? 'GET';
      for (const endpoint of ENDPOINTS) {
        if (!endpoint.upgrade && endpoint.methods.includes(method) && endpoint.match(path)) return routes.get(endpoint.name)!;
      }
      return passThrough;
    },
    selectUpgrade(req) {
      if (req.method !== 'GET') return undefined;
      const path = pathnameOf(req);
      return upgrades.find((u) => u.endpoint.match(path))?.route;
    },
  };
}
