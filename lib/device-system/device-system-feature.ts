import type { GatewayConfig } from '../config/types';
import { MAX_INVENTORY_BYTES } from '../device-api';
import type { Feature } from '../http/feature';
import { readBodyUnlessLeft } from '../http/bounded-body';
import { countInventoryRewrite } from '../observe/metrics';
import { injectInventory } from './inject-inventory';

// Features.DeviceSystem: PUT and PATCH of the device's inventory attributes go through
// injectInventory before whatever delivers them (the pass-through, or the journal during an
// outage), with a Content-Length that matches the new body (product fix MEN-7738). Anything
// unexpected (too large, not JSON) goes on byte for byte and is logged: the device's inventory
// must never fail because of the gateway.

export type DeviceSystemSlice = GatewayConfig['Features']['DeviceSystem'];

export function provisionDeviceSystem(settings: DeviceSystemSlice, maxBytes = MAX_INVENTORY_BYTES): Feature<DeviceSystemSlice> {
  return {
    name: 'DeviceSystem',
    wrappers: {
      'inventory-attributes': {
        stage: 'body',
        wrap: (inner) => async (req, res, ctx) => {
          const declared = Number(req.headers['content-length']);
          if (declared > maxBytes) {
            ctx.log.warn('inventory not extended: body too large, forwarded untouched', { bytes: declared, limit: maxBytes });
            countInventoryRewrite('too_large');
            return inner(req, res, ctx);
          }
          const read = await readBodyUnlessLeft(req, ctx, maxBytes, 'inventory');
          if (!read) return;
          if (read.kind === 'too-large') {
            ctx.log.warn('inventory not extended: body too large, forwarded untouched', { limit: maxBytes });
            countInventoryRewrite('too_large');
            ctx.body ??= read.stream;
            return inner(req, res, ctx);
          }
          const result = injectInventory(read.body, settings);
          if (result.kind === 'malformed')
            ctx.log.warn('inventory not extended: malformed body forwarded untouched', { reason: result.reason });
          else if (result.kind === 'rewritten') ctx.log.debug('inventory extended', { added: result.added.join(',') });
          countInventoryRewrite(result.kind);
          // Complete in memory now: it goes on sized, whatever framing the device used.
          ctx.body = result.kind === 'rewritten' ? result.body : read.body;
          return inner(req, res, ctx);
        },
      },
    },
  };
}
