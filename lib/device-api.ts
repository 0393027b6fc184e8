// Every path of the device API the gateway treats apart from the pass-through, defined once: the
// route table (lib/http/route-table.ts) matches requests against it, features name endpoints by
// their key, and the status board and the journal recognise paths with it. The versions are the
// ones the product and the clients use (device-protocol.md): `next` v1 (GET, POST) and v2
// (POST), status and log v1, inventory v1 (PUT, PATCH), auth v1, deviceconnect v1. Paths are
// compared after lib/http/request-target.ts normalised the request target.

export const ALIVE_PATH = '/api/internal/v1/gateway/alive';
export const ARTIFACT_LINK_PREFIX = '/api/internal/v1/gateway/artifacts/';
export const AUTH_REQUESTS_PATH = '/api/devices/v1/authentication/auth_requests';
export const NEXT_V2_PATH = '/api/devices/v2/deployments/device/deployments/next';
export const NEXT_V1_PATH = '/api/devices/v1/deployments/device/deployments/next';
export const INVENTORY_PATH = '/api/devices/v1/inventory/device/attributes';
/** mender-connect's WebSocket (remote terminal, file transfer, port forward): the one device path that upgrades. */
export const DEVICECONNECT_PATH = '/api/devices/v1/deviceconnect/connect';
const DEPLOYMENT_REPORT = /^\/api\/devices\/v1\/deployments\/device\/deployments\/([^/]{1,128})\/(status|log)$/;

export type EndpointName =
  | 'alive'
  | 'artifact-link'
  | 'auth-request'
  | 'deployments-next-v2'
  | 'deployments-next-v1'
  | 'deployment-status'
  | 'deployment-log'
  | 'inventory-attributes'
  | 'deviceconnect';

export interface Endpoint {
  /** The route's name in logs and metrics (bounded, never a raw URL). */
  readonly name: EndpointName;
  readonly methods: readonly string[];
  match(pathname: string): boolean;
  /** The path itself carries a credential (signed links): logs show the route name instead. */
  readonly sensitivePath?: boolean;
  /** Answered by the gateway itself: says nothing of upstream's health, nor of a device token. */
  readonly local?: boolean;
  /** The only endpoints that may upgrade to a WebSocket. */
  readonly upgrade?: boolean;
}

const exactly =
  (path: string) =>
  (pathname: string): boolean =>
    pathname === path;

/** The table, in the order requests are matched (no two endpoints match the same method and path). */
export const ENDPOINTS: readonly Endpoint[] = [
  { name: 'alive', methods: ['GET', 'HEAD'], match: exactly(ALIVE_PATH), local: true },
  {
    name: 'artifact-link',
    methods: ['GET', 'HEAD'],
    match: (p) => p.startsWith(ARTIFACT_LINK_PREFIX),
    sensitivePath: true,
    local: true,
  },
  { name: 'auth-request', methods: ['POST'], match: exactly(AUTH_REQUESTS_PATH) },
  { name: 'deployments-next-v2', methods: ['POST'], match: exactly(NEXT_V2_PATH) },
  { name: 'deployments-next-v1', methods: ['POST', 'GET'], match: exactly(NEXT_V1_PATH) },
  { name: 'deployment-status', methods: ['PUT'], match: (p) => DEPLOYMENT_REPORT.exec(p)?.[2] === 'status' },
  { name: 'deployment-log', methods: ['PUT'], match: (p) => DEPLOYMENT_REPORT.exec(p)?.[2] === 'log' },
  { name: 'inventory-attributes', methods: ['PUT', 'PATCH'], match: exactly(INVENTORY_PATH) },
  { name: 'deviceconnect', methods: ['GET'], match: exactly(DEVICECONNECT_PATH), upgrade: true },
];

/** The endpoint a method and normalised path belong to, or undefined (the pass-through's). */
export function endpointOf(method: string, pathname: string): Endpoint | undefined {
  for (const endpoint of ENDPOINTS) if (endpoint.methods.includes(method) && endpoint.match(pathname)) return endpoint;
  return undefined;
}

/** The deployment id of a status report path (PUT), or undefined. */
export function deploymentOfStatusPath(pathname: string): string | undefined {
  const m = DEPLOYMENT_REPORT.exec(pathname);
  return m?.[2] === 'status' ? m[1] : undefined;
}

/** Either `next` path. */
export function isNextPath(pathname: string): boolean {
  return pathname === NEXT_V2_PATH || pathname === NEXT_V1_PATH;
}

// The device API paths Mender's gateway sends through the device-token check (devauth), and only
// those: not auth_requests (it takes no token) nor deployments/download (its link is signed in the
// query and no token is looked at: a 200 there proves nothing of the bearer). Plain segments, no
// dot segments or escapes that a proxy might resolve to a path served without a token.
const TOKEN_CHECKED =
  /^\/api\/devices\/v[0-9]{1,2}\/(?:deployments\/device|inventory\/device|deviceconnect|deviceconfig)(\/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)+$/;

/** A path (no query) where a 2xx from upstream means upstream accepted the bearer token. */
export function isTokenCheckedPath(pathname: string): boolean {
  return TOKEN_CHECKED.test(pathname);
}

/** An inventory upload is a few KiB; past 1 MiB it goes on untouched, never looked at. */
export const MAX_INVENTORY_BYTES = 1024 * 1024;
/** A failed deployment's log is the largest report (~9 KB observed); far past that, forwarded untouched. */
export const MAX_REPORT_BYTES = 4 * 1024 * 1024;
