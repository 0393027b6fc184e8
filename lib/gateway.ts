import type { IncomingMessage, ServerResponse } from 'node:http';
import type https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { GatewayConfig } from './config/types';
import { parseDuration } from './config/parse-duration';
import type { Feature, ListenerGuard, StatusViews } from './http/feature';
import { buildRouteTable } from './http/route-table';
import { certificateExpiry } from './observe/certificate-expiry';
import { repeatedErrors } from './observe/repeated-lines';
import type { Logger } from './observe/log';
import type { AdminServer } from './admin/admin-server';
import { reloadServerCertificate } from './admin/reload-tls';
import { journalSlice } from './journal/journal-owner';
import { createPassThrough } from './proxy/pass-through';
import { createUpstream, type Upstream } from './proxy/upstream';
import { type DeviceListener, startDeviceListener } from './server/device-listener';
import { closeGracefully, type DeviceTimeouts, type Protocol } from './server/listeners';
import { type FallRule, FALL_RULE, loadMallocTrim, watchMemoryReturn } from './server/memory-return';

// Composes the running gateway from a validated config: upstream, the features, the route
// table, the listeners (a request's path through them: lib/server/device-listener.ts), and the
// one teardown.

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
  /** Between two samples of the status page's history (default one minute); tests shorten it. */
  historyIntervalMs?: number;
  /** Device-side timeouts (lib/server/listeners.ts, lib/proxy/websocket-tunnel.ts); tests shorten them. */
  timeouts?: Partial<DeviceTimeouts & { tunnelIdleMs: number }>;
  /** When malloc's free memory goes back to the system (lib/server/memory-return.ts); tests shorten it. */
  memoryReturn?: FallRule;
  /** The feature list (default FEATURES); tests reorder it. */
  features?: readonly FeatureEntry<unknown>[];
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
  const listeners: DeviceListener[] = [];
  let admin: AdminServer | undefined;
  let stopMemoryReturn = () => {};

  /**
   * Listeners first, then the features in reverse order of provisioning, then upstream: the one
   * teardown. A feature that fails to close is logged; the others still close.
   */
  async function closeAll(timeoutMs: number): Promise<void> {
    stopMemoryReturn();
    await Promise.all(listeners.map((l) => closeGracefully(l.server, l.upgraded, timeoutMs)));
    for (const { feature } of [...running].reverse()) {
      try {
        await feature.close?.();
      } catch (err) {
        log.error('a feature failed to close', { feature: feature.name, err: err as Error });
      }
    }
    upstream.close();
    // The listeners are closed: no request adds to a count, and none is lost at shutdown.
    repeatedErrors.flush(true);
    certificateExpiry.forget('server');
    certificateExpiry.forget('upstream_ca');
  }

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
    const table = buildRouteTable(features, { web: passThrough.web, ws: passThrough.ws, own: { alive: answerAlive } });
    const listener = (protocol: Protocol, listen: string, key: string) =>
      startDeviceListener({
        protocol,
        listen,
        key,
        https: config.HTTPS,
        guards: guardsOf(features, protocol),
        table,
        log,
        timeouts: options.timeouts,
      });
    if (config.HTTP.Enabled) listeners.push(await listener('http', config.HTTP.Listen, 'HTTP.Listen'));
    if (config.HTTPS.Enabled) listeners.push(await listener('https', config.HTTPS.Listen, 'HTTPS.Listen'));
    // Metrics.*: a listener of its own, showing the other features; it never fails the start or device traffic.
    if (config.Metrics.Enabled) {
      const views: StatusViews = Object.assign({}, ...features.map((f) => f.views));
      const metrics = (require('./admin/metrics-feature') as typeof import('./admin/metrics-feature')).provisionMetrics(config.Metrics, {
        log,
        upstreamUrl: upstream.target.href,
        views,
        isLocalPeer: options.isLocalPeer,
        historyIntervalMs: options.historyIntervalMs,
      });
      admin = metrics.admin;
      running.push({ feature: metrics, slice: (c) => c.Metrics });
    }
  } catch (err) {
    await closeAll(0);
    throw err;
  }

  // After a crowd of devices left, malloc's free pages go back to the system (memory-return.ts).
  stopMemoryReturn = watchMemoryReturn(
    listeners.map((l) => l.server),
    log,
    loadMallocTrim(options.env ?? process.env),
    options.memoryReturn ?? FALL_RULE,
  );
  const addresses: Partial<Record<Protocol, AddressInfo>> = {};
  const tlsOptions = new Map<https.Server, https.ServerOptions>();
  for (const l of listeners) {
    addresses[l.protocol] = l.address;
    if (l.tls) tlsOptions.set(l.server as https.Server, l.tls);
  }
  const serverCertificate = [...tlsOptions.values()][0]?.cert;
  if (serverCertificate) certificateExpiry.certificate('server', config.HTTPS.ServerCertificate, serverCertificate as Buffer, log, 'leaf');
  // As createUpstream read it (a start fails on an unreadable one); it changes only with a restart.
  if (upstream.caPem) certificateExpiry.certificate('upstream_ca', config.UpstreamServer.CACertificate, upstream.caPem, log, 'earliest');
  return {
    addresses,
    admin,
    reload(next) {
      const mark = certificateExpiry.mark();
      const effects = running.map((r) => r.feature.reload?.(r.slice(next)));
      const ca = effects.find((e) => e?.ca !== undefined);
      if (reloadServerCertificate(tlsOptions, next.HTTPS, log, ca?.ca).ca) ca?.applied?.();
      // A reload says every date warning again, once: the files it read said theirs already.
      certificateExpiry.remind(mark);
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
