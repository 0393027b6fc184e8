import type { GatewayConfig } from '../config/types';
import type { DeskAnswer, DeskReport, ReportDesk } from './report-desk';
import type { JournalStats } from '../observe/metrics';

// The journal with worker processes: one writer, the cluster primary. A worker
// hands every report to the primary over cluster's IPC channel and answers the device with
// what comes back, so a report the journal took is on disk (synced) before the device's 204.
// Bodies travel in base64 (IPC is JSON). This file is the worker's end; journal-host.ts is
// the primary's.

export interface WireReport extends Omit<DeskReport, 'request'> {
  request: { method: string; path: string; headers: Record<string, string>; body: string };
}

export type ToPrimary =
  | { type: 'journal-open'; config: GatewayConfig }
  | { type: 'journal-submit'; id: number; report: WireReport }
  | { type: 'journal-settle'; id: number; device: string; authorization?: string }
  | { type: 'journal-upstream-answer'; status: number };

export type ToWorker =
  | { type: 'journal-opened'; error?: string }
  | { type: 'journal-answer'; id: number; answer: DeskAnswer }
  | { type: 'journal-settled'; id: number; settled: boolean }
  /** broadcast when it changes: the status page and metrics of every worker show the journal */
  | { type: 'journal-state'; down: boolean; stats: JournalStats };

export function isToPrimary(m: unknown): m is ToPrimary {
  const type = (m as { type?: unknown } | null)?.type;
  return typeof type === 'string' && ['journal-open', 'journal-submit', 'journal-settle', 'journal-upstream-answer'].includes(type);
}

export interface RemoteDesk extends ReportDesk {
  /** The primary's journal as last broadcast (undefined before the first). */
  stats(): JournalStats | undefined;
  close(): void;
}

type Channel = Pick<NodeJS.Process, 'send' | 'on' | 'off'>;

/** Ask the primary to open the journal (once; later workers find it open), then talk to it. */
export async function connectRemoteDesk(config: GatewayConfig, channel: Channel = process): Promise<RemoteDesk> {
  if (!channel.send) throw new Error('ReportJournal: a worker process without an IPC channel to its primary');
  let nextId = 1;
  let down = false;
  let stats: JournalStats | undefined;
  const waiting = new Map<number, (m: ToWorker) => void>();
  let opened: ((m: ToWorker & { type: 'journal-opened' }) => void) | undefined;

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
    for (const resolve of waiting.values()) resolve({ type: 'journal-answer', id: 0, answer: { t: 'error', message: 'the journal (cluster primary) is gone' } });
    waiting.clear();
  };
  channel.on('message', onMessage);
  channel.on('disconnect', onDisconnect);

  const reply = await new Promise<ToWorker & { type: 'journal-opened' }>((resolve) => {
    opened = resolve;
    channel.send!({ type: 'journal-open', config } satisfies ToPrimary);
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
        resolve({ type: 'journal-answer', id: message.id, answer: { t: 'error', message: `the journal (cluster primary) is unreachable: ${err.message}` } });
      });
    });

  return {
    async submit(report) {
      const { request } = report;
      const wire: WireReport = { ...report, request: { ...request, body: request.body.toString('base64') } };
      const m = await ask({ type: 'journal-submit', id: nextId++, report: wire });
      return m.type === 'journal-answer' ? m.answer : { t: 'error', message: 'unexpected journal reply' };
    },
    async settle(device, authorization) {
      // Nothing queued anywhere (the primary broadcasts a journaled report before its 204):
      // no round trip to the primary on every poll.
      if (stats?.queued === 0) return true;
      const m = await ask({ type: 'journal-settle', id: nextId++, device, authorization });
      return m.type === 'journal-settled' && m.settled;
    },
    noteUpstreamAnswer(status) {
      if (down && status > 0 && status < 500) {
        down = false; // one note per outage is enough; the primary broadcasts the next change
        channel.send!({ type: 'journal-upstream-answer', status } satisfies ToPrimary);
      }
    },
    stats: () => stats,
    close() {
      channel.off('message', onMessage);
      channel.off('disconnect', onDisconnect);
    },
  };
}
