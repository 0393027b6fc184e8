import cluster, { type Worker } from 'node:cluster';
import type { Logger } from '../observe/log';
import type { JournalStats } from '../observe/metrics';
import type { WorkerService } from '../server/workers';
import { BoundedMap } from '../state/bounded-map';
import type { DeskAnswer, DeskReport, JournalSlice, OwnedJournal, ReportDesk } from './journal-owner';
import type { TokenVerdict } from './known-tokens';

// The journal with worker processes: one writer, the cluster primary. A worker hands every
// report to the primary over cluster's IPC channel and answers the device with what comes back,
// so a report the journal took is on disk (synced) before the device's 204. Bodies travel in
// base64 (IPC is JSON). The known-good tokens are the primary's too: a worker tells it what
// upstream said of a token (hash, device, exp) once per token and verdict, and an accepted token
// again at most once a minute while it is in use, so the primary's least-recently-used order
// follows what devices do (an active device is never the oldest), not per request. Below: the
// messages, the worker's end (a desk that asks the primary),
// the primary's end (the owner's desk, journal-owner.ts, loaded when the first worker asks, so a
// primary without the journal carries none of it).

export interface WireReport extends Omit<DeskReport, 'request'> {
  request: { method: string; path: string; headers: Record<string, string>; body: string };
}

export type ToPrimary =
  | { type: 'journal-open'; slice: JournalSlice }
  | { type: 'journal-submit'; id: number; report: WireReport }
  | { type: 'journal-settle'; id: number; authorization: string }
  | { type: 'journal-upstream-answer'; status: number }
  | { type: 'journal-token'; verdict: TokenVerdict };

export type ToWorker =
  | { type: 'journal-opened'; error?: string }
  | { type: 'journal-answer'; id: number; answer: DeskAnswer }
  | { type: 'journal-settled'; id: number; settled: boolean }
  /** broadcast when it changes: the status page and metrics of every worker show the journal */
  | { type: 'journal-state'; down: boolean; stats: JournalStats };

function isToPrimary(m: unknown): m is ToPrimary {
  const type = (m as { type?: unknown } | null)?.type;
  return (
    typeof type === 'string' &&
    ['journal-open', 'journal-submit', 'journal-settle', 'journal-upstream-answer', 'journal-token'].includes(type)
  );
}

export interface RemoteDesk extends ReportDesk {
  /** The primary's journal as last broadcast (undefined before the first). */
  stats(): JournalStats | undefined;
  /** Entries kept (tests, bench/state-sizes.ts). */
  stateSizes(): { waiting: number; sentVerdicts: number };
  close(): void;
}

type Channel = Pick<NodeJS.Process, 'send' | 'on' | 'off'>;

/**
 * Verdicts a worker remembers having sent (least recently sent out), each for VERDICT_REFRESH_MS:
 * a device's every request costs no IPC.
 */
const SENT_VERDICTS = 4096;
/** A token in use is told to the primary again after this long: its place in the primary's order is refreshed. */
export const VERDICT_REFRESH_MS = 60_000;

/** The worker's end: ask the primary to open the journal (once; later workers find it open), then talk to it. */
export async function connectRemoteDesk(
  slice: JournalSlice,
  channel: Channel = process,
  clock: () => number = () => performance.now(),
): Promise<RemoteDesk> {
  if (!channel.send) throw new Error('ReportJournal: a worker process without an IPC channel to its primary');
  let nextId = 1;
  let down = false;
  let stats: JournalStats | undefined;
  // Transient: a request's entry goes with its answer, a failed send, or the primary's exit.
  const waiting = new Map<number, (m: ToWorker) => void>();
  let opened: ((m: ToWorker & { type: 'journal-opened' }) => void) | undefined;
  /** token hash → what was said of it; an entry as old as VERDICT_REFRESH_MS is said again */
  const sentVerdicts = new BoundedMap<string, string>({ maxEntries: SENT_VERDICTS, maxAgeMs: VERDICT_REFRESH_MS }, clock);

  const onMessage = (m: ToWorker): void => {
    if (m?.type === 'journal-opened') opened?.(m);
    else if (m?.type === 'journal-state') ({ down, stats } = m);
    else if (m?.type === 'journal-answer' || m?.type === 'journal-settled') {
      waiting.get(m.id)?.(m);
      waiting.delete(m.id);
    }
  };
  // The primary gone (a worker outlives it only briefly): nothing answered will ever come.
  const onDisconnect = (): void => {
    for (const resolve of waiting.values())
      resolve({ type: 'journal-answer', id: 0, answer: { t: 'error', message: 'the journal (cluster primary) is gone' } });
    waiting.clear();
  };
  channel.on('message', onMessage);
  channel.on('disconnect', onDisconnect);

  const reply = await new Promise<ToWorker & { type: 'journal-opened' }>((resolve) => {
    opened = resolve;
    channel.send!({ type: 'journal-open', slice } satisfies ToPrimary);
  });
  opened = undefined;
  if (reply.error) {
    channel.off('message', onMessage);
    channel.off('disconnect', onDisconnect);
    throw new Error(reply.error);
  }

  const ask = (message: ToPrimary & { id: number }): Promise<ToWorker> =>
    new Promise((resolve) => {
      waiting.set(message.id, resolve);
      channel.send!(message, undefined, undefined, (err: Error | null) => {
        if (!err) return;
        waiting.delete(message.id);
        resolve({
          type: 'journal-answer',
          id: message.id,
          answer: { t: 'error', message: `the journal (cluster primary) is unreachable: ${err.message}` },
        });
      });
    });

  return {
    async submit(report) {
      const { request } = report;
      const wire: WireReport = { ...report, request: { ...request, body: request.body.toString('base64') } };
      const m = await ask({ type: 'journal-submit', id: nextId++, report: wire });
      return m.type === 'journal-answer' ? m.answer : { t: 'error', message: 'unexpected journal reply' };
    },
    async settle(authorization) {
      // Nothing queued anywhere (the primary broadcasts a journaled report before its 204):
      // no round trip to the primary on every poll.
      if (stats?.queued === 0) return true;
      const m = await ask({ type: 'journal-settle', id: nextId++, authorization });
      return m.type === 'journal-settled' && m.settled;
    },
    noteUpstreamAnswer(status) {
      if (down && status > 0 && status < 500) {
        down = false; // one note per outage is enough; the primary broadcasts the next change
        channel.send!({ type: 'journal-upstream-answer', status } satisfies ToPrimary);
      }
    },
    noteToken(verdict) {
      const said = verdict.t === 'accepted' ? `${verdict.device} ${verdict.expiresAt}` : 'refused';
      // peek: a use does not count, the age runs from the send.
      if (sentVerdicts.peek(verdict.hash) === said) return;
      sentVerdicts.set(verdict.hash, said);
      channel.send!({ type: 'journal-token', verdict } satisfies ToPrimary, undefined, undefined, () => undefined);
    },
    stats: () => stats,
    stateSizes() {
      sentVerdicts.prune();
      return { waiting: waiting.size, sentVerdicts: sentVerdicts.size };
    },
    close() {
      channel.off('message', onMessage);
      channel.off('disconnect', onDisconnect);
    },
  };
}

const STATE_EVERY_MS = 250;

/**
 * The primary's end: the first worker to start asks it to open the journal with the
 * journal's slice of the configuration it loaded; the primary then takes every worker's reports through the same desk
 * a single process uses (per-device order, journal, replay with the devices' tokens) and
 * broadcasts the journal's state when it changes.
 */
export function journalForWorkers(log: Logger): WorkerService {
  let opening: Promise<OwnedJournal> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let lastState = '';

  const send = (worker: Worker, message: ToWorker): void => {
    if (worker.isConnected()) worker.send(message, undefined, () => undefined);
  };
  const state = (owned: OwnedJournal): ToWorker => ({
    type: 'journal-state',
    down: owned.replay.upstreamDown,
    stats: { ...owned.journal.stats },
  });
  const broadcast = (owned: OwnedJournal): void => {
    const message = state(owned);
    const text = JSON.stringify(message);
    if (text === lastState) return;
    lastState = text;
    for (const w of Object.values(cluster.workers ?? {})) if (w) send(w, message);
  };

  async function handle(worker: Worker, m: ToPrimary): Promise<void> {
    if (m.type === 'journal-open') {
      opening ??= (async () => {
        const owned = await (await import('./journal-owner')).openForWorkers(m.slice, log);
        log.info('report journal kept by the cluster primary for every worker');
        timer = setInterval(() => broadcast(owned), STATE_EVERY_MS);
        timer.unref();
        return owned;
      })();
      try {
        const owned = await opening;
        send(worker, { type: 'journal-opened' });
        send(worker, state(owned));
      } catch (err) {
        opening = undefined; // the next worker tries again
        send(worker, { type: 'journal-opened', error: (err as Error).message });
      }
      return;
    }
    const owned = opening && (await opening);
    if (!owned) return log.warn('journal message before the journal was opened: ignored', { type: m.type });
    const { desk } = owned;
    if (m.type === 'journal-submit') {
      const { request } = m.report;
      const answer = await desk
        .submit({ ...m.report, request: { ...request, body: Buffer.from(request.body, 'base64') } })
        .catch((err: Error): DeskAnswer => ({ t: 'error', message: err.message }));
      // Every worker hears of the queued report before the device hears its 204: a worker
      // lets `next` through without asking while the broadcast says nothing waits.
      if (answer.t === 'journaled') broadcast(owned);
      send(worker, { type: 'journal-answer', id: m.id, answer });
    } else if (m.type === 'journal-settle') {
      const settled = typeof m.authorization === 'string' ? await desk.settle(m.authorization).catch(() => false) : true;
      send(worker, { type: 'journal-settled', id: m.id, settled });
    } else if (m.type === 'journal-token') desk.noteToken(m.verdict);
    else desk.noteUpstreamAnswer(m.status);
  }

  return {
    handle(worker, message) {
      if (!isToPrimary(message)) return false;
      handle(worker, message).catch((err: unknown) =>
        log.error('report journal: a worker message failed in the primary', { err: err as Error }),
      );
      return true;
    },
    async close() {
      if (timer) clearInterval(timer);
      const owned = opening && (await opening.catch(() => undefined));
      await owned?.close().catch((err: unknown) => log.error('report journal: close failed', { err: err as Error }));
    },
  };
}
