import type { GatewayConfig } from '../config/types';
import type { Feature, StatusViews } from '../http/feature';
import type { Logger } from '../observe/log';
import { type AdminServer, startAdminServer } from './admin-server';

// Metrics.Enabled as a feature (lib/http/feature.ts): the metrics and status page listener. It
// answers no device endpoint; it shows the other features (their views), so the gateway
// provisions it after them.

export type MetricsSlice = GatewayConfig['Metrics'];

export interface MetricsDeps {
  log: Logger;
  /** The upstream server's URL, as the status page shows it. */
  upstreamUrl: string;
  /** What the other features show (the cache's entries and fills). */
  views: StatusViews;
  isLocalPeer?: (address: string | undefined) => boolean;
  /** Between two samples of the status page's history (default one minute); tests shorten it. */
  historyIntervalMs?: number;
}

export function provisionMetrics(settings: MetricsSlice, deps: MetricsDeps): Feature<MetricsSlice> & { admin: AdminServer } {
  const admin = startAdminServer({
    listen: settings.Listen,
    log: deps.log,
    statusPageAllowRemote: settings.StatusPageAllowRemote,
    isLocalPeer: deps.isLocalPeer,
    historyIntervalMs: deps.historyIntervalMs,
    sources: { upstreamUrl: deps.upstreamUrl, cache: deps.views.cache },
  });
  return {
    name: 'Metrics',
    admin,
    reload(next) {
      admin.setStatusPageAllowRemote(next.StatusPageAllowRemote);
      return undefined;
    },
    close: () => admin.close(),
  };
}
