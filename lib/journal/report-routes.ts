import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { GatewayConfig } from '../config/types';
import { injectInventory } from '../device-system/inject-inventory';
import { INVENTORY_PATH, MAX_INVENTORY_BYTES } from '../device-system/inventory-route';
import { readBounded } from '../device-system/read-bounded';
import { upstreamError } from '../http/gateway-error';
import { replyError } from '../http/reply-error';
import type { RequestContext, Route } from '../http/route';
import { countInventoryRewrite, journalMetrics } from '../observe/metrics';
import { deviceIdFromAuthorization } from '../observe/status-page/device-id';
import { createProxyServer, replyProxyError } from '../proxy/pass-through';
import type { Upstream } from '../proxy/upstream';
import type { ReportKind } from './journal-record';
import type { ReportJournal } from './report-journal';
import { acceptedStatus, replayHeaders, UNREACHABLE_STATUSES } from './report-outcome';
import type { ReportReplay } from './report-replay';
import { callUpstream, type BufferedRequest } from './upstream-call';

// Features.ReportJournal: status reports, deployment logs and inventory uploads. The body is
// read (bounded), then, under the device's lock: reports still waiting are replayed first; if
// none wait and upstream is not known to be down, the report goes upstream and its answer goes
// back to the device untouched; if upstream is unreachable (or reports still wait, to keep the
// order), the report is journaled, synced, and the device gets the answer upstream would give.

const STATUS_OR_LOG = /^\/api\/devices\/v1\/deployments\/device\/deployments\/[^/]{1,128}\/(status|log)$/;
/** A failed deployment's log is the largest report (~9 KB observed); far past that, forward untouched. */
const MAX_REPORT_BYTES = 4 * 1024 * 1024;
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
/** Set on answers the gateway gave for upstream; the status page does not count them as upstream's. */
export const JOURNALED_HEADER = 'x-men-gateway-journaled';

export interface ReportRoutesOptions {
  journal: ReportJournal;
  replay: ReportReplay;
  upstream: Upstream;
  deviceSystem: GatewayConfig['Features']['DeviceSystem'];
}

export function createReportRoutes(opts: ReportRoutesOptions): Route[] {
  const proxy = createProxyServer({ upstream: opts.upstream });
  const forwardStream = (req: IncomingMessage, res: ServerResponse, ctx: RequestContext, body: Readable): void => {
    proxy.web(req, res, { buffer: body as never }, (err) => replyProxyError(req, res, err, ctx));
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
    const request: BufferedRequest = { method: req.method ?? 'PUT', path: req.url ?? '/', headers: replayHeaders(req.headers), body };
    const device = deviceIdFromAuthorization(req.headers.authorization);
    if (!device) return live(req, res, ctx, request, kind, undefined);
    await opts.replay.withDevice(device, () => live(req, res, ctx, request, kind, device));
  }

  async function live(req: IncomingMessage, res: ServerResponse, ctx: RequestContext, request: BufferedRequest, kind: ReportKind, device: string | undefined): Promise<void> {
    const { journal, replay } = opts;
    let failure: unknown = new Error('reports of this device are waiting for upstream');
    if (device) {
      replay.noteAuthorization(device, req.headers.authorization);
      if (journal.pendingOf(device).length > 0 && !replay.skipUpstream) await replay.flush(device);
    }
    if (!device || (journal.pendingOf(device).length === 0 && !replay.skipUpstream)) {
      try {
        const upstreamRes = await callUpstream(opts.upstream, request);
        if (!UNREACHABLE_STATUSES.has(upstreamRes.statusCode ?? 502)) {
          if (replay.upstreamDown) replay.markUp();
          res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.statusMessage, copyHeaders(upstreamRes.headers));
          upstreamRes.pipe(res);
          return;
        }
        upstreamRes.resume();
        failure = new Error(`upstream answered ${upstreamRes.statusCode}`);
      } catch (err) {
        failure = err;
      }
      if (!device) return replyError(req, res, upstreamError(failure), ctx.log);
      replay.markDown();
    }
    let kept: 'journaled' | 'full';
    try {
      kept = await journal.add({ at: Date.now(), device: device!, kind, method: request.method, path: request.path, headers: request.headers, body: request.body });
    } catch (err) {
      ctx.log.error('report journal: write failed; the device gets the upstream error', { err: err as Error });
      journalMetrics.failed('write_error');
      return replyError(req, res, upstreamError(failure), ctx.log);
    }
    if (kept === 'full') {
      ctx.log.warn('report journal full: the device gets the upstream error', { kind, queued: journal.stats.queued });
      return replyError(req, res, upstreamError(failure), ctx.log);
    }
    ctx.log.debug('report journaled', { kind, device: device!, queued: journal.pendingOf(device!).length });
    res.writeHead(acceptedStatus(kind), { 'X-MEN-RequestID': ctx.requestId, [JOURNALED_HEADER]: '1', 'Content-Length': 0 });
    res.end();
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

function copyHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  return out;
}
