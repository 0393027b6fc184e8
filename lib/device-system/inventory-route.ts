import type { Readable } from 'node:stream';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayConfig } from '../config/types';
import type { RequestContext, Route } from '../http/route';
import { countInventoryRewrite } from '../observe/metrics';
import { createForwarder } from '../proxy/forward';
import type { Upstream } from '../proxy/upstream';
import { injectInventory, type DeviceSystemSettings } from './inject-inventory';
import { type BoundedBody, readBounded } from '../http/bounded-body';

// Features.DeviceSystem: PUT and PATCH of the device's inventory attributes go through
// injectInventory, then upstream with a Content-Length that matches the new body (product fix
// MEN-7738). Anything unexpected — too large, not JSON — is forwarded byte for byte and
// logged: the device's inventory must never fail because of the gateway.

export const INVENTORY_PATH = '/api/devices/v1/inventory/device/attributes';

/** A device sends a few KiB; a megabyte is far past any real inventory. */
export const MAX_INVENTORY_BYTES = 1024 * 1024;

export function createInventoryRoute(
  settings: GatewayConfig['Features']['DeviceSystem'],
  upstream: Upstream,
  maxBytes = MAX_INVENTORY_BYTES,
): Route {
  const forwarder = createForwarder(upstream);
  const forward = (req: IncomingMessage, res: ServerResponse, ctx: RequestContext, body?: Buffer | Readable): void => {
    forwarder.forward(req, res, ctx, { body });
  };

  return {
    name: 'inventory-attributes',
    methods: ['PUT', 'PATCH'],
    match: (path) => path === INVENTORY_PATH,
    async handle(req, res, ctx) {
      const declared = Number(req.headers['content-length']);
      if (declared > maxBytes) {
        ctx.log.warn('inventory not extended: body too large, forwarded untouched', { bytes: declared, limit: maxBytes });
        countInventoryRewrite('too_large');
        return forward(req, res, ctx);
      }
      let read: BoundedBody;
      try {
        read = await readBounded(req, maxBytes);
      } catch (err) {
        ctx.log.debug('device left while sending its inventory', { err: err as Error, status: 499 });
        return;
      }
      if (read.kind === 'too-large') {
        ctx.log.warn('inventory not extended: body too large, forwarded untouched', { limit: maxBytes });
        countInventoryRewrite('too_large');
        return forward(req, res, ctx, read.stream);
      }
      const result = injectInventory(read.body, settings as DeviceSystemSettings);
      let body = read.body;
      if (result.kind === 'malformed')
        ctx.log.warn('inventory not extended: malformed body forwarded untouched', { reason: result.reason });
      if (result.kind === 'rewritten') {
        body = result.body;
        ctx.log.debug('inventory extended', { added: result.added.join(',') });
      }
      countInventoryRewrite(result.kind);
      // The body is now complete in memory: send it sized, whatever framing the device used.
      forward(req, res, ctx, body);
    },
  };
}
