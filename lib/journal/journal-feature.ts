import cluster from 'node:cluster';
import type { IncomingMessage } from 'node:http';
import type { Feature, Wrapper } from '../http/feature';
import type { Logger } from '../observe/log';
import { journalMetrics } from '../observe/metrics';
import type { Upstream } from '../proxy/upstream';
import { IssuedTokens } from './issued-tokens';
import { connectRemoteDesk } from './journal-ipc';
import { type JournalSlice, openOwnedJournal, type ReportDesk } from './journal-owner';
import { keptTokensWrapper } from './kept-tokens';
import { issuedVerdict } from './known-tokens';
import { nextWrapper, noteToken, reportWrapper } from './report-wrappers';

// Features.ReportJournal as a feature (lib/http/feature.ts). It answers no endpoint itself: it
// wraps, at the delivery stage, the ones that carry reports and tokens, whoever answers them:
// - status, log and inventory: kept on disk while upstream is unreachable (report-wrappers.ts);
// - `next`: held back while the device's reports wait;
// - auth: the token upstream last issued given back during an outage (kept-tokens.ts).
// Its desk is this process's journal (journal-owner.ts) or, in a worker, the cluster primary's
// (journal-ipc.ts). Every upstream answer to a forwarded request ends an outage at once (not at
// the replay's next probe), and one upstream accepted makes its token known good.

export interface JournalDeps {
  upstream: Upstream;
  log: Logger;
}

export async function provisionJournal(slice: JournalSlice, deps: JournalDeps): Promise<Feature<JournalSlice>> {
  let desk: ReportDesk;
  let close: () => Promise<void>;
  if (cluster.isWorker) {
    const remote = await connectRemoteDesk(slice);
    journalMetrics.watch(() => remote.stats() ?? { queued: 0, bytes: 0, devices: 0, journaled: 0, replayed: 0, failed: 0, superseded: 0 });
    desk = remote;
    close = async () => remote.close();
  } else {
    const owned = await openOwnedJournal(slice, deps.upstream, deps.log);
    desk = owned.desk;
    close = owned.close;
  }
  // A token upstream issued on the auth route is known good to the journal.
  const tokens = new IssuedTokens();
  tokens.onIssued = (token) => {
    const verdict = issuedVerdict(token);
    if (verdict) desk.noteToken(verdict);
  };
  const delivery = (wrap: Wrapper) => ({ stage: 'delivery' as const, wrap });
  return {
    name: 'ReportJournal',
    wrappers: {
      'auth-request': delivery(keptTokensWrapper(tokens, { onUpstreamAnswer: (status) => desk.noteUpstreamAnswer(status) })),
      'deployment-status': delivery(reportWrapper(desk, 'status')),
      'deployment-log': delivery(reportWrapper(desk, 'log')),
      'inventory-attributes': delivery(reportWrapper(desk, 'inventory')),
      'deployments-next-v1': delivery(nextWrapper(desk)),
      'deployments-next-v2': delivery(nextWrapper(desk)),
    },
    upstreamAnswered(status: number, req: IncomingMessage) {
      desk.noteUpstreamAnswer(status);
      noteToken(desk, req, status);
    },
    close,
  };
}
