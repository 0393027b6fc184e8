import type { IncomingHttpHeaders } from 'node:http';
import { journalMetrics } from '../observe/metrics';
import type { Logger } from '../observe/log';
import type { Upstream } from '../proxy/upstream';
import type { ReportKind } from './journal-record';
import type { ReportJournal } from './report-journal';
import { acceptedStatus, UNREACHABLE_STATUSES } from './report-outcome';
import type { ReportReplay } from './report-replay';
import { callUpstream, type BufferedRequest } from './upstream-call';

// Where a device's report goes, decided in the one process that owns the journal (the only
// process, or the cluster primary for its workers). Under the device's lock: reports still
// waiting are replayed first; if none wait and upstream is not known to be down, the report
// goes upstream and upstream's answer is the device's; if upstream is unreachable (or reports
// still wait, to keep the order), it is journaled and synced, and the device gets the answer
// upstream would give. Answers are plain data, so a worker can get them over IPC.

export interface DeskReport {
  kind: ReportKind;
  /** the `sub` of the device's token; none: forwarded, never journaled */
  device: string | undefined;
  request: BufferedRequest;
}

export type DeskAnswer =
  | { t: 'upstream'; status: number; headers: IncomingHttpHeaders; body: string }
  | { t: 'journaled'; status: number }
  /** upstream unreachable and not journaled (no device, journal full or failing) */
  | { t: 'error'; code?: string; message: string };

export interface ReportDesk {
  submit(report: DeskReport): Promise<DeskAnswer>;
  /**
   * Before a device asks for deployments: its waiting reports go first (the server decides
   * `next` from the statuses it has). false: some still wait, the call must not overtake them.
   */
  settle(device: string, authorization: string | undefined): Promise<boolean>;
  /** A device call that went through (pass-through): an answer below 500 ends an outage. */
  noteUpstreamAnswer(status: number): void;
}

/** An upstream answer to a report is a few bytes (204, or an error body); far past that: unreachable. */
const MAX_ANSWER_BYTES = 64 * 1024;

export function localDesk(journal: ReportJournal, replay: ReportReplay, upstream: Upstream, log: Logger): ReportDesk {
  async function live(report: DeskReport, device: string | undefined): Promise<DeskAnswer> {
    let failure: unknown = new Error('reports of this device are waiting for upstream');
    if (device) {
      replay.noteAuthorization(device, report.request.headers.authorization);
      if (journal.pendingOf(device).length > 0 && !replay.skipUpstream) await replay.flush(device);
    }
    if (!device || (journal.pendingOf(device).length === 0 && !replay.skipUpstream)) {
      try {
        const answer = await forward(upstream, report.request);
        if (!UNREACHABLE_STATUSES.has(answer.status)) {
          if (replay.upstreamDown) replay.markUp();
          return answer;
        }
        failure = new Error(`upstream answered ${answer.status}`);
      } catch (err) {
        failure = err;
      }
      if (!device) return errorAnswer(failure);
      replay.markDown();
    }
    let kept: 'journaled' | 'full';
    try {
      kept = await journal.add({ at: Date.now(), device, kind: report.kind, ...report.request });
    } catch (err) {
      log.error('report journal: write failed; the device gets the upstream error', { err: err as Error });
      journalMetrics.failed('write_error');
      return errorAnswer(failure);
    }
    if (kept === 'full') {
      log.warn('report journal full: the device gets the upstream error', { kind: report.kind, queued: journal.stats.queued });
      return errorAnswer(failure);
    }
    log.debug('report journaled', { kind: report.kind, device, queued: journal.pendingOf(device).length });
    return { t: 'journaled', status: acceptedStatus(report.kind) };
  }

  return {
    submit(report) {
      const { device } = report;
      return device ? replay.withDevice(device, () => live(report, device)) : live(report, undefined);
    },
    async settle(device, authorization) {
      if (journal.pendingOf(device).length === 0) return true;
      replay.noteAuthorization(device, authorization);
      // The device asks upstream anyway: its oldest report is the probe, even before one is due.
      return replay.withDevice(device, async () => {
        if (journal.pendingOf(device).length > 0) await replay.flush(device);
        return journal.pendingOf(device).length === 0;
      });
    },
    noteUpstreamAnswer: (status) => replay.noteUpstreamAnswer(status),
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
