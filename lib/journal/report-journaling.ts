import cluster from 'node:cluster';
import { join } from 'node:path';
import type { GatewayConfig } from '../config/types';
import { parseDuration } from '../config/parse-duration';
import type { Route } from '../http/route';
import type { Router } from '../http/router';
import type { Logger } from '../observe/log';
import { journalMetrics } from '../observe/metrics';
import type { Upstream } from '../proxy/upstream';
import { connectRemoteDesk } from './journal-ipc';
import { localDesk, type ReportDesk } from './report-desk';
import { ReportJournal } from './report-journal';
import { ReportReplay, type ReplayOptions } from './report-replay';
import { createReportRoutes } from './report-routes';
import { reportsFirst } from './reports-first';

// Features.ReportJournal (issue 10) as the gateway composes it: the journal opened (and what it
// held before a restart queued for replay), the replay loop, the device routes. In a worker
// process the journal is the cluster primary's (journal-ipc.ts, journal-host.ts): the worker
// has the routes and a desk that asks the primary.

export interface ReportJournaling {
  routes: Route[];
  desk: ReportDesk;
  /** The router, with a device's `next` held back while its reports wait (reports-first.ts). */
  ordered(router: Router): Router;
  close(): Promise<void>;
}

/** The journal, its replay loop and the desk, in the process that owns the file. */
export interface OwnedJournal {
  journal: ReportJournal;
  replay: ReportReplay;
  desk: ReportDesk;
  close(): Promise<void>;
}

export const DEFAULT_JOURNAL_DIR = '/var/lib/mender-gateway/journal';

export function journalDir(config: Readonly<GatewayConfig>): string {
  const settings = config.Features.ReportJournal;
  if (settings.Path) return settings.Path;
  const cache = config.Features.ArtifactsProxy.ArtifactsCache;
  return config.Features.ArtifactsProxy.Enabled && cache.Enabled ? join(cache.Path, 'journal') : DEFAULT_JOURNAL_DIR;
}

export async function openOwnedJournal(config: Readonly<GatewayConfig>, upstream: Upstream, log: Logger, options: ReplayOptions = {}): Promise<OwnedJournal> {
  const settings = config.Features.ReportJournal;
  const dir = journalDir(config);
  const opening = { dir, maxBytes: settings.MaxSize, maxAgeMs: parseDuration(settings.MaxAge), log };
  // An explicit Path must work at start. The default one (under the cache, or /var/lib) is made
  // when first needed; if it cannot be opened (not writable, another gateway's), the gateway
  // still starts and a report that has to wait gets the upstream error, as with the journal off.
  const implicit = settings.Path === '';
  let journal: ReportJournal;
  try {
    journal = await ReportJournal.open({ ...opening, lazy: implicit });
  } catch (err) {
    if (!implicit) throw new Error(`ReportJournal: cannot open the journal in ${dir}: ${(err as Error).message}`);
    log.error('report journal: cannot open the default journal; tried again at the first report that has to wait (set ReportJournal.Path)', { dir, err: err as Error });
    journal = ReportJournal.deferred(opening);
  }
  const replay = new ReportReplay(journal, upstream, log, options);
  if (journal.stats.queued > 0) replay.wake();
  return {
    journal,
    replay,
    desk: localDesk(journal, replay, upstream, log),
    async close() {
      replay.close();
      await journal.close();
    },
  };
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
