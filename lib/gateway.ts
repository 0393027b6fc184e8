import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { GatewayConfig } from './config/types';
import { parseDuration } from './config/parse-duration';
import { DEVICECONNECT_PATH } from './device-api';
import type { Feature, ListenerGuard, StatusViews } from './http/feature';
import { setForwardedHeaders } from './http/forwarded-headers';
import { rawJsonResponse, refuseSocket, replyError, sendJsonError } from './http/reply-error';
import { createRequestContext, pathnameOf, type RequestContext } from './http/route';
import { buildRouteTable, type RouteTable } from './http/route-table';
import { checkRequestTarget } from './http/request-target';
import { logWhenDone } from './http/access-log';
import type { Logger } from './observe/log';
import { noteOutOfFiles } from './observe/out-of-files';
import type { AdminServer } from './admin/admin-server';
import { reloadServerCertificate } from './admin/reload-tls';
import { journalSlice } from './journal/journal-owner';
import { createPassThrough } from './proxy/pass-through';
import { createUpstream, type Upstream } from './proxy/upstream';
import { formatAddress } from './server/listen-address';
import {
  closeGracefully,
  createDeviceServer,
  DEVICE_TIMEOUTS,
  type DeviceServer,
  type DeviceTimeouts,
  listen,
  type Protocol,
  tlsOptionsFor,
} from './server/listeners';

// Composes the running gateway from a validated config: upstream, the features, the route
// table, the listeners. A request's path: listener → context (request id, client address) →
// the features' listener guards (mTLS) → access log → route table (lib/http/route-table.ts:
// the endpoint's handler inside the features' wrappers, or the pass-through to the Mender
// server).

/**
 * One feature as the gateway lists it: when it is on, its own slice of the configuration, and
 * how it is provisioned from that slice and the gateway's upstream and logger. A feature's
 * modules load only when it is on (an idle gateway pays for what it uses). To add a feature:
 * an entry here (docs/architecture.md, "Adding a feature").
 */
export interface FeatureEntry<Slice = never> {
  enabled(config: Readonly<GatewayConfig>): boolean;
  slice(config: Readonly<GatewayConfig>): Slice;
  provision(slice: Slice, deps: { upstream: Upstream; log: Logger }): Feature<Slice> | Promise<Feature<Slice>>;
}

const feature = <Slice>(entry: FeatureEntry<Slice>): FeatureEntry<unknown> => entry as FeatureEntry<unknown>;

/** The device-side features. The order is the provisioning order only: no two of them depend on each other. */
export const FEATURES: readonly FeatureEntry<unknown>[] = [
  feature({
    enabled: (c) => c.Features.ArtifactsProxy.Enabled,
    slice: (c) => c.Features.ArtifactsProxy,
    provision: (slice, deps) =>
      (require('./deployments/artifacts-proxy') as typeof import('./deployments/artifacts-proxy')).provisionArtifactsProxy(slice, deps),
  }),
  feature({
    enabled: (c) => c.Features.mTLS.Enabled,
    slice: (c) => ({ mTLS: c.Features.mTLS, HTTP: c.HTTP }),
    provision: (slice, deps) => (require('./mtls/mtls-feature') as typeof import('./mtls/mtls-feature')).provisionMtls(slice, deps),
  }),
  feature({
    enabled: (c) => c.Features.ReportJournal.Enabled,
    slice: journalSlice,
    provision: (slice, deps) =>
      (require('./journal/journal-feature') as typeof import('./journal/journal-feature')).provisionJournal(slice, deps),
  }),
  feature({
    enabled: (c) => c.Features.DeviceSystem.Enabled,
    slice: (c) => c.Features.DeviceSystem,
    provision: (slice) =>
      (require('./device-system/device-system-feature') as typeof import('./device-system/device-system-feature')).provisionDeviceSystem(
        slice,
      ),
  }),
];

export interface RunningGateway {
  readonly addresses: Partial<Record<Protocol, AddressInfo>>;
  /** The metrics and status page listener (Metrics.Enabled). */
  readonly admin?: AdminServer;
  /** SIGHUP: take the server certificate and key, and the mTLS files, named by `next` from disk again. */
  reload(next: Readonly<GatewayConfig>): void;
  close(timeoutMs?: number): Promise<void>;
}

export interface GatewayOptions {
  env?: NodeJS.ProcessEnv;
  /** Which peers of the metrics listener count as local (default: loopback); tests replace it. */
  isLocalPeer?: (address: string | undefined) => boolean;
  /** Device-side timeouts (lib/server/listeners.ts, lib/proxy/websocket-tunnel.ts); tests shorten them. */
  timeouts?: Partial<DeviceTimeouts & { tunnelIdleMs: number }>;
  /** The feature list (default FEATURES); tests reorder it. */
  features?: readonly FeatureEntry<unknown>[];
}

interface Listener {
  protocol: Protocol;
  server: DeviceServer;
  upgraded: Set<Socket>;
}

/** A provisioned feature, with the slice it reloads from. */
interface Running {
  feature: Feature<unknown>;
  slice(config: Readonly<GatewayConfig>): unknown;
}

export async function startGateway(config: Readonly<GatewayConfig>, log: Logger, options: GatewayOptions = {}): Promise<RunningGateway> {
  if (!config.HTTP.Enabled && !config.HTTPS.Enabled) throw new Error('neither HTTP nor HTTPS is enabled: nothing to listen on');
  const upstream = createUpstream(config.UpstreamServer, options.env ?? process.env);
  log.info(`proxying devices to ${upstream.target.href}`, { insecure_skip_verify: config.UpstreamServer.InsecureSkipVerify });
  const running: Running[] = [];
  const listeners: Listener[] = [];
  const addresses: Partial<Record<Protocol, AddressInfo>> = {};
  const tlsOptions = new Map<https.Server, https.ServerOptions>();
  let admin: AdminServer | undefined;

  /** Listeners first, then the features in reverse order of provisioning, then upstream: the one teardown. */
  async function closeAll(timeoutMs: number): Promise<void> {
    await Promise.all(listeners.map((l) => closeGracefully(l.server, l.upgraded, timeoutMs)));
    for (const { feature } of running.reverse()) await feature.close?.();
    upstream.close();
  }

  let table: RouteTable;
  try {
    for (const entry of options.features ?? FEATURES) {
      if (!entry.enabled(config)) continue;
      running.push({ feature: await entry.provision(entry.slice(config), { upstream, log }), slice: entry.slice });
    }
    const features = running.map((r) => r.feature);
    // Any device call upstream answers is told to the features (the journal ends an outage at once).
    const passThrough = createPassThrough(upstream, {
      onUpstreamAnswer: (status, req) => {
        for (const f of features) f.upstreamAnswered?.(status, req);
      },
      tunnelIdleMs: options.timeouts?.tunnelIdleMs,
    });
    table = buildRouteTable(features, { web: passThrough.web, ws: passThrough.ws, own: { alive: answerAlive } });
    if (config.HTTP.Enabled) listeners.push(await startListener('http', config.HTTP.Listen, 'HTTP.Listen', guardsOf(features, 'http')));
    if (config.HTTPS.Enabled)
      listeners.push(await startListener('https', config.HTTPS.Listen, 'HTTPS.Listen', guardsOf(features, 'https')));
    // Metrics.*: a listener of its own, showing the other features; it never fails the start or device traffic.
    if (config.Metrics.Enabled) {
      const views: StatusViews = Object.assign({}, ...features.map((f) => f.views));
      const metrics = (require('./admin/metrics-feature') as typeof import('./admin/metrics-feature')).provisionMetrics(config.Metrics, {
        log,
        upstreamUrl: upstream.target.href,
        views,
        isLocalPeer: options.isLocalPeer,
      });
      admin = metrics.admin;
      running.push({ feature: metrics, slice: (c) => c.Metrics });
    }
  } catch (err) {
    await closeAll(0);
    throw err;
  }

  async function startListener(protocol: Protocol, listenSetting: string, key: string, guards: ListenerGuard[]): Promise<Listener> {
    let tls: https.ServerOptions | undefined;
    try {
      tls = protocol === 'https' ? Object.assign(tlsOptionsFor(config.HTTPS), ...guards.map((g) => g.tlsOptions)) : undefined;
    } catch (err) {
      throw new Error(`HTTPS: cannot load server certificate: ${(err as Error).message}`);
    }
    const server = createDeviceServer(protocol, tls, { ...DEVICE_TIMEOUTS, ...options.timeouts });
    if (tls) tlsOptions.set(server as https.Server, tls);
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
    const address = await listen(server, listenSetting, key);
    // An accept that fails (descriptors ran out and libuv's reserve was spent) must not crash
    // the process: counted into the out-of-files line; anything else is logged.
    server.on('error', (err: NodeJS.ErrnoException) => {
      if (!noteOutOfFiles(err, 'connections')) log.error('listener error', { listener: protocol, err: err.code ?? err.message });
    });
    addresses[protocol] = address;
    log.info('listening', { listener: protocol, address: formatAddress(address.address, address.port) });
    return { protocol, server, upgraded };
  }

  return {
    addresses,
    admin,
    reload(next) {
      const effects = running.map((r) => r.feature.reload?.(r.slice(next)));
      const ca = effects.find((e) => e?.ca !== undefined);
      if (reloadServerCertificate(tlsOptions, next.HTTPS, log, ca?.ca).ca) ca?.applied?.();
    },
    async close(timeoutMs = parseDuration(config.ShutdownTimeout)) {
      log.info('shutting down', { timeout_ms: timeoutMs });
      await closeAll(timeoutMs);
    },
  };
}

function guardsOf(features: readonly Feature<unknown>[], protocol: Protocol): ListenerGuard[] {
  return features.flatMap((f) => f.guards?.[protocol] ?? []);
}

/** The health probe, on every listener, without touching upstream. */
function answerAlive(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(204).end();
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
