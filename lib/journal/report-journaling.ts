import cluster from 'node:cluster';
import type { GatewayConfig } from '../config/types';
import type { Route } from '../http/route';
import type { Router } from '../http/router';
import type { Logger } from '../observe/log';
import { journalMetrics } from '../observe/metrics';
import type { Upstream } from '../proxy/upstream';
import { connectRemoteDesk } from './journal-ipc';
import { openOwnedJournal } from './owned-journal';
import type { ReportDesk } from './report-desk';
import type { ReplayOptions } from './report-replay';
import { createReportRoutes } from './report-routes';
import { reportsFirst } from './reports-first';

// Features.ReportJournal as the gateway composes it: the journal opened (and what it
// held before a restart queued for replay), the replay loop (owned-journal.ts), the device
// routes. In a worker process the journal is the cluster primary's (journal-ipc.ts,
// journal-host.ts): the worker has the routes and a desk that asks the primary.

export interface ReportJournaling {
  routes: Route[];
  desk: ReportDesk;
  /** The router, with a device's `next` held back while its reports wait (reports-first.ts). */
  ordered(router: Router): Router;
  close(): Promise<void>;
}

export async function openReportJournaling(config: Readonly<GatewayConfig>, upstream: Upstream, log: Logger, options: ReplayOptions = {}): Promise<ReportJournaling> {
  let desk: ReportDesk;
  let close: () => Promise<void>;
  if (cluster.isWorker) {
    const remote = await connectRemoteDesk(config as GatewayConfig);
    journalMetrics.watch(() => remote.stats() ?? { queued: 0, bytes: 0, devices: 0, journaled: 0, replayed: 0, failed: 0, superseded: 0 });
    desk = remote;
    close = async () => remote.close();
  } else {
    const owned = await openOwnedJournal(config, upstream, log, options);
    desk = owned.desk;
    close = owned.close;
  }
  return {
    routes: createReportRoutes({ desk, upstream, deviceSystem: config.Features.DeviceSystem }),
    desk,
    ordered: (router) => reportsFirst(router, desk),
    close,
  };
}
