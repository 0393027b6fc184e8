import type { IncomingMessage, ServerResponse } from 'node:http';
import { MAX_INVENTORY_BYTES, MAX_REPORT_BYTES } from '../device-api';
import { readBodyUnlessLeft } from '../http/bounded-body';
import type { Wrapper } from '../http/feature';
import { GatewayError, upstreamError } from '../http/gateway-error';
import { replyError } from '../http/reply-error';
import type { RequestContext } from '../http/route';
import type { ReportKind } from './journal-file';
import type { DeskAnswer, ReportDesk } from './journal-owner';
import { verdictOf } from './known-tokens';
import { answerHeaders, replayHeaders } from './upstream-call';

// The journal's wrappers around the endpoints that carry reports, whoever answers them (the
// pass-through, or DeviceSystem's inventory rewrite outside it): the body is read (bounded) and
// handed to the desk (journal-owner.ts, or the primary's over IPC), whose answer goes to the
// device: upstream's own, or the one upstream would give for a report the journal took. A report
// the desk does not take (no token upstream vouched for, or too large to keep) goes on to the
// inner handler untouched, exactly as with the journal off. And around `next`: a device's
// deployments are not asked for while its reports wait.

/** Set on answers the gateway gave for upstream; the status page does not count them as upstream's. */
export const JOURNALED_HEADER = 'x-men-gateway-journaled';

const CAPS: Record<ReportKind, number> = { status: MAX_REPORT_BYTES, log: MAX_REPORT_BYTES, inventory: MAX_INVENTORY_BYTES };

export function reportWrapper(desk: ReportDesk, kind: ReportKind): Wrapper {
  return (inner) => async (req, res, ctx) => {
    const read = await readBodyUnlessLeft(req, ctx, CAPS[kind], 'report');
    if (!read) return;
    if (read.kind === 'too-large') {
      ctx.log.warn('report too large to journal: forwarded untouched', { kind, limit: CAPS[kind] });
      // A body a wrapper before this one holds in memory goes on as it is, sized.
      ctx.body ??= read.stream;
      return inner(req, res, ctx);
    }
    ctx.body = read.body;
    const request = { method: req.method ?? 'PUT', path: req.url ?? '/', headers: replayHeaders(req.headers), body: read.body };
    const answer = await desk.submit({ kind, request });
    if (answer.t === 'pass') return inner(req, res, ctx);
    reply(req, res, ctx, answer);
  };
}

function reply(req: IncomingMessage, res: ServerResponse, ctx: RequestContext, answer: Exclude<DeskAnswer, { t: 'pass' }>): void {
  if (answer.t === 'journaled') {
    res.writeHead(answer.status, { 'X-MEN-RequestID': ctx.requestId, [JOURNALED_HEADER]: '1', 'Content-Length': 0 });
    res.end();
  } else if (answer.t === 'upstream') {
    const body = Buffer.from(answer.body, 'base64');
    res.writeHead(answer.status, { ...answerHeaders(answer.headers), 'Content-Length': body.length });
    res.end(body);
  } else {
    const err =
      answer.code === 'UPSTREAM_TIMEOUT'
        ? new GatewayError('UPSTREAM_TIMEOUT', answer.message)
        : upstreamError(Object.assign(new Error(answer.message), { code: answer.code }));
    replyError(req, res, err, ctx.log);
  }
}

// A device's `next` must not overtake its journaled reports: the server decides what to offer
// from the statuses it has, and a device whose `success` still waits would be offered the same
// deployment again (the server then records `already-installed` after the `success`). So a
// device with reports waiting gets them replayed first; while some still wait, its `next` gets
// the upstream error (the client asks again at its next poll), whoever answers `next`. Only a
// token known good names the device: a forged one holds back nobody's `next`. A 2xx answer to
// `next` comes from upstream only: its token is known good from then on.

export function nextWrapper(desk: ReportDesk): Wrapper {
  return (inner) => async (req, res, ctx) => {
    const authorization = req.headers.authorization;
    res.once('finish', () => noteToken(desk, req, res.statusCode));
    if (authorization && !(await desk.settle(authorization))) {
      req.resume();
      ctx.log.debug('deployments/next held back: reports of the device wait for upstream');
      return replyError(
        req,
        res,
        new GatewayError('UPSTREAM_UNREACHABLE', 'upstream server unreachable: reports of this device are waiting for it'),
        ctx.log,
      );
    }
    // Settling may have waited (a worker asks the primary): a device that left meanwhile is not
    // forwarded, its half-sent body would hold an upstream connection open.
    if (req.destroyed || req.socket.destroyed)
      return void ctx.log.debug('device left while its next waited for its reports', { status: 499 });
    return inner(req, res, ctx);
  };
}

/** Upstream answered a request with this token: known good (or no more), as known-tokens.ts judges. */
export function noteToken(desk: ReportDesk, req: IncomingMessage, status: number): void {
  const verdict = verdictOf(req.headers.authorization, req.url ?? '/', status);
  if (verdict) desk.noteToken(verdict);
}
