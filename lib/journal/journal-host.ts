import type { Worker } from 'node:cluster';
import type { Logger } from '../observe/log';
import { createUpstream, type Upstream } from '../proxy/upstream';
import type { ToPrimary, ToWorker } from './journal-ipc';
import type { DeskAnswer } from './report-desk';
import { openOwnedJournal, type OwnedJournal } from './owned-journal';

// The cluster primary's end of the journal (journal-ipc.ts has the worker's): the one writer.
// The first worker to start asks it to open the journal with the configuration it loaded;
// the primary then takes every worker's reports through the same desk a single process uses
// (per-device order, journal, replay with the devices' tokens) and broadcasts the journal's
// state when it changes. Loaded only when a worker asks, so a primary without the journal
// carries none of this.

const STATE_EVERY_MS = 250;

export interface JournalHost {
  handle(worker: Worker, message: ToPrimary): void;
  close(): Promise<void>;
}

export function createJournalHost(log: Logger, workers: () => Worker[]): JournalHost {
  let opening: Promise<{ owned: OwnedJournal; upstream: Upstream }> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let lastState = '';

  const send = (worker: Worker, message: ToWorker): void => {
    if (worker.isConnected()) worker.send(message, undefined, () => undefined);
  };
  const state = (owned: OwnedJournal): ToWorker => ({ type: 'journal-state', down: owned.replay.upstreamDown, stats: { ...owned.journal.stats } });
  const broadcast = (owned: OwnedJournal): void => {
    const message = state(owned);
    const text = JSON.stringify(message);
    if (text === lastState) return;
    lastState = text;
    for (const w of workers()) send(w, message);
  };

  async function handle(worker: Worker, m: ToPrimary): Promise<void> {
    if (m.type === 'journal-open') {
      opening ??= (async () => {
        const upstream = createUpstream(m.config.UpstreamServer, process.env);
        const owned = await openOwnedJournal(m.config, upstream, log);
        log.info('report journal kept by the cluster primary for every worker');
        timer = setInterval(() => broadcast(owned), STATE_EVERY_MS);
        timer.unref();
        return { owned, upstream };
      })();
      try {
        const { owned } = await opening;
        send(worker, { type: 'journal-opened' });
        send(worker, state(owned));
      } catch (err) {
        opening = undefined; // the next worker tries again
        send(worker, { type: 'journal-opened', error: (err as Error).message });
      }
      return;
    }
    const opened = opening && (await opening);
    if (!opened) return log.warn('journal message before the journal was opened: ignored', { type: m.type });
    const { desk } = opened.owned;
    if (m.type === 'journal-submit') {
      const { request } = m.report;
      const answer = await desk
        .submit({ ...m.report, request: { ...request, body: Buffer.from(request.body, 'base64') } })
        .catch((err: Error): DeskAnswer => ({ t: 'error', message: err.message }));
      // Every worker hears of the queued report before the device hears its 204: a worker
      // lets `next` through without asking while the broadcast says nothing waits.
      if (answer.t === 'journaled') broadcast(opened.owned);
      send(worker, { type: 'journal-answer', id: m.id, answer });
    } else if (m.type === 'journal-settle') {
      const settled = await desk.settle(m.device, m.authorization).catch(() => false);
      send(worker, { type: 'journal-settled', id: m.id, settled });
    } else desk.noteUpstreamAnswer(m.status);
  }

  return {
    handle(worker, message) {
      handle(worker, message).catch((err: unknown) => log.error('report journal: a worker message failed in the primary', { err: err as Error }));
    },
    async close() {
      if (timer) clearInterval(timer);
      const opened = opening && (await opening.catch(() => undefined));
      if (!opened) return;
      await opened.owned.close();
      opened.upstream.close();
    },
  };
}
