import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { GatewayConfig } from './config/types';
import { parseDuration } from './config/parse-duration';
import { setForwardedHeaders } from './http/forwarded-headers';
import { rawJsonResponse, refuseSocket, replyError, sendJsonError } from './http/reply-error';
import { createRequestContext, type RequestContext, type Route } from './http/route';
import { checkRequestTarget } from './http/request-target';
import { aliveRoute, createRouter, DEVICECONNECT_PATH, deviceconnectRoute, pathnameOf, type Router } from './http/router';
import { logWhenDone } from './http/access-log';
import type { Logger } from './observe/log';
import { noteOutOfFiles } from './observe/out-of-files';
import { createArtifactProxy } from './deployments/artifacts-proxy';
import { createArtifactCache } from './cache/artifact-cache';
import { cacheMetrics } from './observe/metrics';
import { cacheView } from './observe/status-page/cache-view';
import type { AdminServer } from './admin/admin-server';
import { reloadServerCertificate } from './admin/reload-tls';
import { createOutageAuthRoute } from './journal/auth-during-outage';
import { IssuedTokens } from './mtls/issued-tokens';
import { openReportJournaling } from './journal/report-routes';
import { createPassThrough } from './proxy/pass-through';
import { createUpstream } from './proxy/upstream';
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

// A feature's modules load only when it is configured (an idle gateway pays for what
// it uses); `import type` above keeps the types.
const loadMtls = () => require('./mtls/mtls-admission') as typeof import('./mtls/mtls-admission');
const loadAdmin = () => require('./admin/admin-server') as typeof import('./admin/admin-server');
const loadPlainHttpGuard = () => require('./mtls/plain-http-guard') as typeof import('./mtls/plain-http-guard');
const loadInventory = () => require('./device-system/inventory-route') as typeof import('./device-system/inventory-route');

// Composes the running gateway from a validated config: upstream, route table, listeners.
// A request's path: listener → context (request id, client address) → access log → route
// table (health, feature routes) → pass-through to the Mender server.

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
}

interface Listener {
  protocol: Protocol;
  server: DeviceServer;
  upgraded: Set<Socket>;
}

export async function startGateway(config: Readonly<GatewayConfig>, log: Logger, options: GatewayOptions = {}): Promise<RunningGateway> {
  if (!config.HTTP.Enabled && !config.HTTPS.Enabled) throw new Error('neither HTTP nor HTTPS is enabled: nothing to listen on');
  const upstream = createUpstream(config.UpstreamServer, options.env ?? process.env);
  log.info(`proxying devices to ${upstream.target.href}`, { insecure_skip_verify: config.UpstreamServer.InsecureSkipVerify });
  // Features.ArtifactsProxy: deployments/next rewrite + signed-link route; none when disabled.
  // Features.ArtifactsProxy.ArtifactsCache: links are served through the on-disk cache.
  const proxySettings = config.Features.ArtifactsProxy;
  const artifactCache =
    proxySettings.Enabled && proxySettings.ArtifactsCache.Enabled
      ? await createArtifactCache({
          config: proxySettings.ArtifactsCache,
          log,
          agentFor: upstream.originAgent,
          timeoutMs: upstream.timeoutMs,
        })
      : undefined;
  const artifactProxy = await createArtifactProxy({ config, log, upstream, artifactServer: artifactCache });
  // Features.mTLS: client certificates on HTTPS, auth_requests preauthorized upstream.
  // With the journal, the last token upstream issued each device is given back to it during an
  // outage (client 5.1 re-authenticates before ArtifactCommit), on either auth route.
  const outageTokens = config.Features.ReportJournal.Enabled ? new IssuedTokens() : undefined;
  const mtls = config.Features.mTLS.Enabled ? loadMtls().createMtlsAdmission(config.Features.mTLS, upstream, log, outageTokens) : undefined;
  // With mTLS the HTTP listener serves the health probe only, unless Features.mTLS.AllowPlainHTTP.
  const plainHttpGuard = mtls && loadPlainHttpGuard().createPlainHttpGuard(config, log);
  const routes: Route[] = [aliveRoute, ...(mtls ? [mtls.route] : []), ...artifactProxy.routes];
  // Features.ReportJournal: reports kept on disk while upstream is unreachable; its
  // inventory route applies DeviceSystem itself, so it comes first.
  const journaling = config.Features.ReportJournal.Enabled ? await openReportJournaling(config, upstream, log) : undefined;
  if (journaling) routes.push(...journaling.routes);
  // A token upstream issued on either auth route is known good to the journal.
  if (journaling && outageTokens) outageTokens.onIssued = (token) => journaling.noteIssued(token);
  // With mTLS its own route (above) handles auth requests.
  if (journaling && outageTokens && !mtls) {
    const desk = journaling.desk;
    routes.push(createOutageAuthRoute({ upstream, onUpstreamAnswer: (status) => desk.noteUpstreamAnswer(status) }, outageTokens));
  }
  // Any device call upstream answers ends an outage for the journal at once, not at its next
  // probe; one upstream accepted makes its token known good to the journal.
  const passThrough = createPassThrough(upstream, {
    onUpstreamAnswer: journaling && ((status, req) => journaling.noteAnswer(status, req)),
    tunnelIdleMs: options.timeouts?.tunnelIdleMs,
  });
  // Features.DeviceSystem: inventory uploads gain the system id and default attributes.
  if (config.Features.DeviceSystem.Enabled) routes.push(loadInventory().createInventoryRoute(config.Features.DeviceSystem, upstream));
  const routed = createRouter(routes, { name: 'pass-through', handle: passThrough.web }, [deviceconnectRoute(passThrough.ws)]);
  const router = journaling ? journaling.ordered(routed) : routed;

  const listeners: Listener[] = [];
  const addresses: Partial<Record<Protocol, AddressInfo>> = {};
  const tlsOptions = new Map<https.Server, https.ServerOptions>();
  try {
    if (config.HTTP.Enabled) listeners.push(await startListener('http', config.HTTP.Listen, 'HTTP.Listen'));
    if (config.HTTPS.Enabled) listeners.push(await startListener('https', config.HTTPS.Listen, 'HTTPS.Listen'));
  } catch (err) {
    await Promise.all(listeners.map((l) => closeGracefully(l.server, l.upgraded, 0)));
    await artifactProxy.close();
    await journaling?.close();
    mtls?.close();
    upstream.close();
    throw err;
  }

  // Metrics.*: a listener of its own; it never fails the start or device traffic.
  if (artifactCache) {
    const cache = artifactCache;
    cacheMetrics.watch(() => ({ entries: cache.index.all().length, bytes: cache.index.usedBytes(), fillsInProgress: cache.activeFills }));
  }
  const admin = config.Metrics.Enabled
    ? loadAdmin().startAdminServer({
        listen: config.Metrics.Listen,
        log,
        statusPageAllowRemote: config.Metrics.StatusPageAllowRemote,
        isLocalPeer: options.isLocalPeer,
        sources: { upstreamUrl: upstream.target.href, cache: artifactCache && cacheView(artifactCache) },
      })
    : undefined;

  async function startListener(protocol: Protocol, listenSetting: string, key: string): Promise<Listener> {
    let tls: https.ServerOptions | undefined;
    try {
      tls = protocol === 'https' ? { ...tlsOptionsFor(config.HTTPS), ...mtls?.tlsOptions } : undefined;
    } catch (err) {
      throw new Error(`HTTPS: cannot load server certificate: ${(err as Error).message}`);
    }
    const server = createDeviceServer(protocol, tls, { ...DEVICE_TIMEOUTS, ...options.timeouts });
    if (tls) tlsOptions.set(server as https.Server, tls);
    const upgraded = new Set<Socket>();
    if (mtls && protocol === 'https') mtls.attach(server as https.Server);
    const guard = protocol === 'http' ? plainHttpGuard : undefined;
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const ctx = contextFor(req, protocol, log);
      if (guard && !guard.admitRequest(req, res, ctx)) return;
      if (!mtls || mtls.admitRequest(req, res, ctx)) handleRequest(router, req, res, ctx);
    });
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      upgraded.add(socket);
      socket.once('close', () => upgraded.delete(socket));
      const ctx = contextFor(req, protocol, log);
      if (guard && !guard.admitUpgrade(req, socket, ctx)) return;
      if (!mtls || mtls.admitUpgrade(req, socket, ctx)) handleUpgrade(router, req, socket, head, ctx);
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
      const ca = mtls?.reload(next.Features.mTLS);
      if (reloadServerCertificate(tlsOptions, next.HTTPS, log, ca).ca) mtls?.caApplied();
      admin?.setStatusPageAllowRemote(next.Metrics.StatusPageAllowRemote);
    },
    async close(timeoutMs = parseDuration(config.ShutdownTimeout)) {
      log.info('shutting down', { timeout_ms: timeoutMs });
      await Promise.all(listeners.map((l) => closeGracefully(l.server, l.upgraded, timeoutMs)));
      await admin?.close();
      await artifactProxy.close();
      await journaling?.close();
      mtls?.close();
      upstream.close();
    },
  };
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

function handleRequest(router: Router, req: IncomingMessage, res: ServerResponse, ctx: RequestContext): void {
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
function handleUpgrade(router: Router, req: IncomingMessage, socket: Socket, head: Buffer, ctx: RequestContext): void {
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
