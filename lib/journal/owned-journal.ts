import { join } from 'node:path';
import type { GatewayConfig } from '../config/types';
import { parseDuration } from '../config/parse-duration';
import type { Logger } from '../observe/log';
import type { Upstream } from '../proxy/upstream';
import { localDesk, type ReportDesk } from './report-desk';
import { ReportJournal } from './report-journal';
import { ReportReplay, type ReplayOptions } from './report-replay';

// The journal in the process that writes it (the only process, or the cluster primary): the
// file opened with what it held queued for replay, the replay loop, the desk. No routes and no
// proxy here, so the primary loads little.

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

