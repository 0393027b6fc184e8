import type { IncomingHttpHeaders } from 'node:http';
import { parseDuration } from '../config/parse-duration';
import { journalDir } from '../config/journal-dir';
import type { GatewayConfig } from '../config/types';
import type { Logger } from '../observe/log';
import { journalMetrics } from '../observe/metrics';
import { createUpstream, type Upstream } from '../proxy/upstream';
import type { ReportKind } from './journal-file';
import { KnownTokens, type TokenVerdict, verdictOf } from './known-tokens';
import { ReportJournal } from './report-journal';
import { ReportReplay } from './report-replay';
import { callUpstream, UNREACHABLE_STATUSES, type BufferedRequest } from './upstream-call';

// The journal in the process that owns the file (the only process, or the cluster primary for
// its workers): the file opened with what it held queued for replay, the replay loop, and the
// desk that decides where a device's report goes. No routes and no proxy here, so the primary
// loads little.
//
// The desk: a report's device is the one of its token, and only of a token known good
// (known-tokens.ts: upstream accepted or issued that very token). Under that device's lock:
// reports still waiting are replayed first; if none wait and upstream is not known to be down,
// the report goes upstream and upstream's answer is the device's; if upstream is unreachable (or
// reports still wait, to keep the order), it is journaled and synced, and the device gets the
// answer upstream would give. A report whose token is not known good is not the desk's: it is
// answered `pass`, and goes on as with the journal off (upstream unreachable, the device gets the
// error it would get without the journal, and keeps its report). Answers are plain data, so a worker can get them over IPC (journal-ipc.ts).

export interface DeskReport {
  kind: ReportKind;
  request: BufferedRequest;
}

export type DeskAnswer =
  | { t: 'upstream'; status: number; headers: IncomingHttpHeaders; body: string }
  | { t: 'journaled'; status: number }
  /** no device vouched for: the report goes on as with the journal off (the wrapper's inner handler) */
  | { t: 'pass' }
  /** upstream unreachable and not journaled (no device, journal full or failing) */
  | { t: 'error'; code?: string; message: string };

export interface ReportDesk {
  submit(report: DeskReport): Promise<DeskAnswer>;
  /**
   * Before a device asks for deployments: its waiting reports go first (the server decides
   * `next` from the statuses it has). false: some still wait, the call must not overtake them.
   * Only a token known good names a device here: any other is let through.
   */
  settle(authorization: string): Promise<boolean>;
  /** A device call that went through (pass-through): an answer below 500 ends an outage. */
  noteUpstreamAnswer(status: number): void;
  /** Upstream accepted, refused or issued a device token (known-tokens.ts). */
  noteToken(verdict: TokenVerdict): void;
}

/** The journal, its replay loop and the desk, in the process that owns the file. */
export interface OwnedJournal {
  journal: ReportJournal;
  replay: ReportReplay;
  known: KnownTokens;
  desk: ReportDesk;
  close(): Promise<void>;
}

/**
 * Features.ReportJournal's slice of the configuration: its own keys, its folder (derived once
 * from the whole configuration, lib/config/journal-dir.ts), and the upstream server (a cluster's
 * primary opens its own connection for the workers' replays). No secrets: workers send it to
 * the primary over IPC.
 */
export interface JournalSlice {
  ReportJournal: GatewayConfig['Features']['ReportJournal'];
  Dir: string;
  UpstreamServer: GatewayConfig['UpstreamServer'];
}

export function journalSlice(config: Readonly<GatewayConfig>): JournalSlice {
  return { ReportJournal: config.Features.ReportJournal, Dir: journalDir(config), UpstreamServer: config.UpstreamServer };
}

export async function openOwnedJournal(slice: JournalSlice, upstream: Upstream, log: Logger): Promise<OwnedJournal> {
  const settings = slice.ReportJournal;
  const dir = slice.Dir;
  const opening = {
    dir,
    maxBytes: settings.MaxSize,
    maxDeviceBytes: settings.MaxDeviceSize,
    maxAgeMs: parseDuration(settings.MaxAge),
    log,
  };
  // An explicit Path must work at start. The default one (under the cache, or /var/lib) is made
  // when first needed; if it cannot be opened (not writable, another gateway's), the gateway
  // still starts and a report that has to wait gets the upstream error, as with the journal off.
  const implicit = settings.Path === '';
  let journal: ReportJournal;
  try {
    journal = await ReportJournal.open({ ...opening, lazy: implicit });
  } catch (err) {
    if (!implicit) throw new Error(`ReportJournal: cannot open the journal in ${dir}: ${(err as Error).message}`);
    log.error(
      'report journal: cannot open the default journal; tried again at the first report that has to wait (set ReportJournal.Path)',
      { dir, err: err as Error },
    );
    journal = ReportJournal.deferred(opening);
  }
  // Beside the journal, written as soon as a token is known (the journal file itself waits for
  // a report that has to wait): a device that authenticated before an outage may report during
  // it even after the gateway restarted.
  const known = await KnownTokens.load(dir, log, !implicit);
  const replay = new ReportReplay(journal, upstream, log, known);
  // The replay knows an outage before any device request fails (mender_gateway_upstream_up).
  journalMetrics.watch(() => ({ ...journal.stats, upstreamDown: replay.upstreamDown }));
  if (journal.stats.queued > 0) replay.wake();
  return {
    journal,
    replay,
    known,
    desk: createDesk(journal, replay, upstream, log, known),
    async close() {
      replay.close();
      await known.flush();
      await journal.close();
    },
  };
}

/** The journal for a cluster's workers, opened in the primary with the configuration a worker loaded. */
export async function openForWorkers(slice: JournalSlice, log: Logger): Promise<OwnedJournal> {
  const upstream = createUpstream(slice.UpstreamServer, process.env);
  const owned = await openOwnedJournal(slice, upstream, log).catch((err: unknown) => {
    upstream.close();
    throw err;
  });
  return {
    ...owned,
    async close() {
      await owned.close();
      upstream.close();
    },
  };
}

/** The answer the device expects when the gateway took its report (real-client.md §7.7). */
export function acceptedStatus(kind: ReportKind): number {
  return kind === 'inventory' ? 200 : 204;
}

/** An upstream answer to a report is a few bytes (204, or an error body); far past that: unreachable. */
const MAX_ANSWER_BYTES = 64 * 1024;

function createDesk(journal: ReportJournal, replay: ReportReplay, upstream: Upstream, log: Logger, known: KnownTokens): ReportDesk {
  async function live(report: DeskReport, device: string): Promise<DeskAnswer> {
    let failure: unknown = new Error('reports of this device are waiting for upstream');
    const { authorization } = report.request.headers;
    replay.noteAuthorization(device, authorization);
    if (journal.pendingOf(device).length > 0 && !replay.skipUpstream) await replay.flush(device);
    if (journal.pendingOf(device).length === 0 && !replay.skipUpstream) {
      try {
        const answer = await forward(upstream, report.request);
        const verdict = verdictOf(authorization, report.request.path, answer.status);
        if (verdict) known.apply(verdict);
        if (!UNREACHABLE_STATUSES.has(answer.status)) {
          if (replay.upstreamDown) replay.markUp();
          return answer;
        }
        failure = new Error(`upstream answered ${answer.status}`);
      } catch (err) {
        failure = err;
      }
      replay.markDown();
    }
    let kept: 'journaled' | 'full' | 'device-full';
    try {
      kept = await journal.add({ at: Date.now(), device, trusted: true, kind: report.kind, ...report.request });
    } catch (err) {
      log.error('report journal: write failed; the device gets the upstream error', { err: err as Error });
      journalMetrics.failed('write_error');
      return errorAnswer(failure);
    }
    if (kept === 'full') {
      log.warn('report journal full: the device gets the upstream error', { kind: report.kind, queued: journal.stats.queued });
      return errorAnswer(failure);
    }
    if (kept === 'device-full') {
      log.warn('report journal: the device is over its MaxDeviceSize; it gets the upstream error', {
        device,
        kind: report.kind,
        bytes: journal.bytesOf(device),
      });
      return errorAnswer(failure);
    }
    log.debug('report journaled', { kind: report.kind, device, queued: journal.pendingOf(device).length });
    return { t: 'journaled', status: acceptedStatus(report.kind) };
  }

  return {
    submit(report) {
      const device = known.deviceOf(report.request.headers.authorization);
      return device ? replay.withDevice(device, () => live(report, device)) : Promise.resolve({ t: 'pass' });
    },
    async settle(authorization) {
      if (journal.stats.queued === 0) return true;
      const device = known.deviceOf(authorization);
      if (device === undefined || journal.pendingOf(device).length === 0) return true;
      replay.noteAuthorization(device, authorization);
      // The device asks upstream anyway: its oldest report is the probe, even before one is due.
      return replay.withDevice(device, async () => {
        if (journal.pendingOf(device).length > 0) await replay.flush(device);
        return journal.pendingOf(device).length === 0;
      });
    },
    noteUpstreamAnswer: (status) => replay.noteUpstreamAnswer(status),
    noteToken: (verdict) => known.apply(verdict),
  };
}

async function forward(upstream: Upstream, request: BufferedRequest): Promise<DeskAnswer & { t: 'upstream' }> {
  const res = await callUpstream(upstream, request);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_ANSWER_BYTES) {
      res.destroy();
      throw new Error(`upstream answered a report with more than ${MAX_ANSWER_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  return { t: 'upstream', status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks).toString('base64') };
}

function errorAnswer(err: unknown): DeskAnswer {
  return { t: 'error', code: (err as NodeJS.ErrnoException)?.code, message: (err as Error)?.message ?? String(err) };
}
