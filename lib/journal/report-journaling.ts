import { join } from 'node:path';
import type { GatewayConfig } from '../config/types';
import { parseDuration } from '../config/parse-duration';
import type { Route } from '../http/route';
import type { Router } from '../http/router';
import type { Logger } from '../observe/log';
import type { Upstream } from '../proxy/upstream';
import { localDesk, type ReportDesk } from './report-desk';
import { ReportJournal } from './report-journal';
import { ReportReplay, type ReplayOptions } from './report-replay';
import { createReportRoutes } from './report-routes';
import { reportsFirst } from './reports-first';

// Features.ReportJournal (issue 10) as the gateway composes it: the journal opened (and what it
// held before a restart queued for replay), the replay loop, the device routes.

export interface ReportJournaling {
  routes: Route[];
  desk: ReportDesk;
  /** The router, with a device's `next` held back while its reports wait (reports-first.ts). */
  ordered(router: Router): Router;
  close(): Promise<void>;
}

export const DEFAULT_JOURNAL_DIR = '/var/lib/mender-gateway/journal';

export function journalDir(config: Readonly<GatewayConfig>): string {
  const settings = config.Features.ReportJournal;
  if (settings.Path) return settings.Path;
  const cache = config.Features.ArtifactsProxy.ArtifactsCache;
  return config.Features.ArtifactsProxy.Enabled && cache.Enabled ? join(cache.Path, 'journal') : DEFAULT_JOURNAL_DIR;
}

export async function openReportJournaling(config: Readonly<GatewayConfig>, upstream: Upstream, log: Logger, options: ReplayOptions = {}): Promise<ReportJournaling> {
  const settings = config.Features.ReportJournal;
  const dir = journalDir(config);
  let journal: ReportJournal;
  try {
    journal = await ReportJournal.open({ dir, maxBytes: settings.MaxSize, maxAgeMs: parseDuration(settings.MaxAge), log });
  } catch (err) {
    throw new Error(`ReportJournal: cannot open the journal in ${dir}: ${(err as Error).message}`);
  }
  const replay = new ReportReplay(journal, upstream, log, options);
  if (journal.stats.queued > 0) replay.wake();
  const desk = localDesk(journal, replay, upstream, log);
  return {
    routes: createReportRoutes({ desk, upstream, deviceSystem: config.Features.DeviceSystem }),
    desk,
    ordered: (router) => reportsFirst(router, desk),
    async close() {
      replay.close();
      await journal.close();
    },
  };
}
