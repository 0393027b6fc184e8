import cluster from 'node:cluster';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { GatewayConfig } from '../config/types';
import { injectInventory } from '../device-system/inject-inventory';
import { INVENTORY_PATH, MAX_INVENTORY_BYTES } from '../device-system/inventory-route';
import { type BoundedBody, readBounded } from '../http/bounded-body';
import { GatewayError, upstreamError } from '../http/gateway-error';
import { replyError } from '../http/reply-error';
import type { RequestContext, Route } from '../http/route';
import { pathnameOf, type Router } from '../http/router';
import type { Logger } from '../observe/log';
import { countInventoryRewrite, journalMetrics } from '../observe/metrics';
import { createForwarder } from '../proxy/forward';
import type { Upstream } from '../proxy/upstream';
import type { ReportKind } from './journal-file';
import { connectRemoteDesk } from './journal-ipc';
import { openOwnedJournal, type DeskAnswer, type ReportDesk } from './journal-owner';
import { issuedVerdict, verdictOf } from './known-tokens';
import { answerHeaders, replayHeaders } from './upstream-call';

// Features.ReportJournal as the gateway composes it, on the device side: the journal's desk
// (this process's journal, journal-owner.ts, or in a worker the cluster primary's, journal-ipc.ts),
// the routes that hand it status reports, deployment logs and inventory uploads, and the router
// with a device's `next` held back while its reports wait.

export interface ReportJournaling {
  routes: Route[];
  desk: ReportDesk;
  /** The router, with a device's `next` held back while its reports wait (reportsFirst below). */
  ordered(router: Router): Router;
  /** Upstream answered a device request the gateway forwarded: an outage ends, a token is known good (or no more). */
  noteAnswer(status: number, req: IncomingMessage): void;
  /** An auth route got a token from upstream (a 200): known good for its device. */
  noteIssued(token: string): void;
  close(): Promise<void>;
}

export async function openReportJournaling(config: Readonly<GatewayConfig>, upstream: Upstream, log: Logger): Promise<ReportJournaling> {
  let desk: ReportDesk;
  let close: () => Promise<void>;
  if (cluster.isWorker) {
    const remote = await connectRemoteDesk(config as GatewayConfig);
    journalMetrics.watch(() => remote.stats() ?? { queued: 0, bytes: 0, devices: 0, journaled: 0, replayed: 0, failed: 0, superseded: 0 });
    desk = remote;
    close = async () => remote.close();
  } else {
    const owned = await openOwnedJournal(config, upstream, log);
    desk = owned.desk;
    close = owned.close;
  }
  return {
    routes: createReportRoutes({ desk, upstream, deviceSystem: config.Features.DeviceSystem }),
    desk,
    ordered: (router) => reportsFirst(router, desk),
    noteAnswer(status, req) {
      desk.noteUpstreamAnswer(status);
      noteToken(desk, req, status);
    },
    noteIssued(token) {
      const verdict = issuedVerdict(token);
      if (verdict) desk.noteToken(verdict);
    },
    close,
  };
}

// The routes: the body is read (bounded) and handed to the desk, whose answer goes to the
// device: upstream's own, or the one upstream would give for a report the journal took.

const STATUS_OR_LOG = /^\/api\/devices\/v1\/deployments\/device\/deployments\/[^/]{1,128}\/(status|log)$/;
/** A failed deployment's log is the largest report (~9 KB observed); far past that, forward untouched. */
const MAX_REPORT_BYTES = 4 * 1024 * 1024;
/** Set on answers the gateway gave for upstream; the status page does not count them as upstream's. */
export const JOURNALED_HEADER = 'x-men-gateway-journaled';

interface ReportRoutesOptions {
  desk: ReportDesk;
  upstream: Upstream;
  deviceSystem: GatewayConfig['Features']['DeviceSystem'];
}

function createReportRoutes(opts: ReportRoutesOptions): Route[] {
  const forwarder = createForwarder(opts.upstream);
  const forwardStream = (req: IncomingMessage, res: ServerResponse, ctx: RequestContext, body: Readable): void => {
    forwarder.forward(req, res, ctx, { body });
  };

  async function handle(req: IncomingMessage, res: ServerResponse, ctx: RequestContext, kind: ReportKind, maxBytes: number): Promise<void> {
    let read: BoundedBody;
    try {
      read = await readBounded(req, maxBytes);
    } catch (err) {
      ctx.log.debug('device left while sending its report', { err: err as Error, status: 499 });
      return;
    }
    if (read.kind === 'too-large') {
      ctx.log.warn('report too large to journal: forwarded untouched', { kind, limit: maxBytes });
      return forwardStream(req, res, ctx, read.stream);
    }
    let body = read.body;
    if (kind === 'inventory' && opts.deviceSystem.Enabled) body = extendInventory(body, opts.deviceSystem, ctx);
    const request = { method: req.method ?? 'PUT', path: req.url ?? '/', headers: replayHeaders(req.headers), body };
    const answer = await opts.desk.submit({ kind, request });
    reply(req, res, ctx, answer);
  }

  return [
    {
      name: 'deployment-report',
      methods: ['PUT'],
      match: (path) => STATUS_OR_LOG.test(path),
      handle: (req, res, ctx) => handle(req, res, ctx, /\/status$/.test(req.url?.split('?')[0] ?? '') ? 'status' : 'log', MAX_REPORT_BYTES),
    },
    {
      name: 'inventory-attributes',
      methods: ['PUT', 'PATCH'],
      match: (path) => path === INVENTORY_PATH,
      handle: (req, res, ctx) => handle(req, res, ctx, 'inventory', MAX_INVENTORY_BYTES),
    },
  ];
}

/** Features.DeviceSystem, as its own route does it: the journal keeps what would go upstream. */
function extendInventory(body: Buffer, settings: GatewayConfig['Features']['DeviceSystem'], ctx: RequestContext): Buffer {
  const result = injectInventory(body, settings);
  countInventoryRewrite(result.kind);
  if (result.kind === 'malformed') ctx.log.warn('inventory not extended: malformed body forwarded untouched', { reason: result.reason });
  return result.kind === 'rewritten' ? result.body : body;
}

function reply(req: IncomingMessage, res: ServerResponse, ctx: RequestContext, answer: DeskAnswer): void {
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
// the upstream error (the client asks again at its next poll), whatever route would serve it.
// Only a token known good names the device: a forged one holds back nobody's `next`. A 2xx
// answer to `next` comes from upstream only (whichever route forwarded it): its token is known
// good from then on.

const NEXT = /^\/api\/devices\/v[12]\/deployments\/device\/deployments\/next$/;

function noteToken(desk: ReportDesk, req: IncomingMessage, status: number): void {
  const verdict = verdictOf(req.headers.authorization, req.url ?? '/', status);
  if (verdict) desk.noteToken(verdict);
}

function reportsFirst(router: Router, desk: ReportDesk): Router {
  return {
    ...router,
    select(req) {
      const route = router.select(req);
      if (!NEXT.test(pathnameOf(req))) return route;
      return {
        ...route,
        async handle(req, res, ctx) {
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
          // Settling may have waited (a worker asks the primary): a device that left meanwhile
          // is not forwarded, its half-sent body would hold an upstream connection open.
          if (req.destroyed || req.socket.destroyed)
            return void ctx.log.debug('device left while its next waited for its reports', { status: 499 });
          return route.handle(req, res, ctx);
        },
      };
    },
  };
}
