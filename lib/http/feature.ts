import type { IncomingMessage, ServerResponse } from 'node:http';
import type https from 'node:https';
import type { Socket } from 'node:net';
import type { EndpointName } from '../device-api';
import type { CacheView } from '../observe/status-page/status-snapshot';
import type { Handler, RequestContext, RouteLabel } from './route';

// The one shape of a feature (artifact proxy and cache, mTLS, report journal, DeviceSystem,
// metrics and status page). A feature is provisioned from its own slice of the configuration
// and the dependencies it names (lib/gateway.ts lists them), and hands back what it adds:
// - handlers: the endpoints of the device API table (lib/device-api.ts) it answers itself; one
//   feature per endpoint, or the gateway refuses to start;
// - wrappers: decorations of an endpoint's handler, whoever answers it (a feature or the
//   pass-through); at most one per stage, so the order features are listed in decides nothing;
// - guards: checks on a listener's connections and requests (mTLS);
// - views: what the status page shows of it; upstreamAnswered: what upstream said to the
//   pass-through;
// - reload (SIGHUP) and close (in reverse order of provisioning, by the gateway).

export type Protocol = 'http' | 'https';

/** A handler around another: it may answer itself, or call `inner`. */
export type Wrapper = (inner: Handler) => Handler;

/**
 * Where a wrapper sits: `body` wrappers (outermost) change what a device sent (DeviceSystem's
 * inventory attributes); `delivery` wrappers (around the handler) decide how it reaches upstream
 * (the journal keeps reports and tokens through an outage).
 */
export type WrapperStage = 'body' | 'delivery';
export const WRAPPER_STAGES: readonly WrapperStage[] = ['body', 'delivery'];

export interface EndpointWrapper {
  stage: WrapperStage;
  wrap: Wrapper;
}

/** Checks on one listener's traffic, before any route. */
export interface ListenerGuard {
  /** The route name refused requests are logged and counted under. */
  refused: RouteLabel;
  /** Merged into the HTTPS listener's options. */
  tlsOptions?: https.ServerOptions;
  /** Watch an HTTPS listener once it exists. */
  attach?(server: https.Server): void;
  /** false: refused, and answered already. */
  admitRequest(req: IncomingMessage, res: ServerResponse, ctx: RequestContext): boolean;
  /** false: refused, the socket answered and closed. */
  admitUpgrade(req: IncomingMessage, socket: Socket, ctx: RequestContext): boolean;
}

/** What a SIGHUP changed that the gateway applies to its listeners. */
export interface ReloadEffect {
  /** A new client CA for the HTTPS listeners' TLS options. */
  ca?: string;
  /** Called once the listeners use it. */
  applied?(): void;
}

export interface StatusViews {
  cache?: CacheView;
}

export interface Feature<Slice = unknown> {
  readonly name: string;
  readonly handlers?: Partial<Record<EndpointName, Handler>>;
  readonly wrappers?: Partial<Record<EndpointName, EndpointWrapper>>;
  readonly guards?: Partial<Record<Protocol, ListenerGuard>>;
  readonly views?: StatusViews;
  /** Told of every answer upstream gives to a request the pass-through forwarded (the journal learns upstream is back). */
  upstreamAnswered?(status: number, req: IncomingMessage): void;
  /** SIGHUP, with the feature's slice of the configuration read again. */
  reload?(next: Slice): ReloadEffect | undefined;
  close?(): void | Promise<void>;
}
