import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { GatewayConfig } from '../config/types';
import { injectInventory } from '../device-system/inject-inventory';
import { INVENTORY_PATH, MAX_INVENTORY_BYTES } from '../device-system/inventory-route';
import { readBounded } from '../device-system/read-bounded';
import { GatewayError, upstreamError } from '../http/gateway-error';
import { replyError } from '../http/reply-error';
import type { RequestContext, Route } from '../http/route';
import { countInventoryRewrite } from '../observe/metrics';
import { deviceIdFromAuthorization } from '../observe/status-page/device-id';
import { createForwarder } from '../proxy/forward';
import type { Upstream } from '../proxy/upstream';
import type { ReportKind } from './journal-record';
import type { DeskAnswer, ReportDesk } from './report-desk';
import { replayHeaders } from './report-outcome';

// Features.ReportJournal: status reports, deployment logs and inventory uploads. The body is
// read (bounded) and handed to the desk (report-desk.ts: this process's journal, or the cluster
// primary's over IPC), whose answer goes to the device: upstream's own, or the one upstream
// would give for a report the journal took.

const STATUS_OR_LOG = /^\/api\/devices\/v1\/deployments\/device\/deployments\/[^/]{1,128}\/(status|log)$/;
/** A failed deployment's log is the largest report (~9 KB observed); far past that, forward untouched. */
const MAX_REPORT_BYTES = 4 * 1024 * 1024;
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'content-length']);
/** Set on answers the gateway gave for upstream; the status page does not count them as upstream's. */
export const JOURNALED_HEADER = 'x-men-gateway-journaled';

export interface ReportRoutesOptions {
  desk: ReportDesk;
  upstream: Upstream;
  deviceSystem: GatewayConfig['Features']['DeviceSystem'];
}

export function createReportRoutes(opts: ReportRoutesOptions): Route[] {
  const forwarder = createForwarder(opts.upstream);
  const forwardStream = (req: IncomingMessage, res: ServerResponse, ctx: RequestContext, body: Readable): void => {
    forwarder.forward(req, res, ctx, { body });
  };

  async function handle(req: IncomingMessage, res: ServerResponse, ctx: RequestContext, kind: ReportKind, maxBytes: number): Promise<void> {
    let read;
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
    const answer = await opts.desk.submit({ kind, device: deviceIdFromAuthorization(req.headers.authorization), request });
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
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(answer.headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
    res.writeHead(answer.status, { ...headers, 'Content-Length': body.length });
    res.end(body);
  } else {
    const err = answer.code === 'UPSTREAM_TIMEOUT' ? new GatewayError('UPSTREAM_TIMEOUT', answer.message) : upstreamError(Object.assign(new Error(answer.message), { code: answer.code }));
    replyError(req, res, err, ctx.log);
  }
}
