import { GatewayError } from '../http/gateway-error';
import { replyError } from '../http/reply-error';
import { pathnameOf, type Router } from '../http/router';
import { deviceIdFromAuthorization } from '../observe/status-page/device-id';
import type { ReportDesk } from './report-desk';

// A device's `next` must not overtake its journaled reports: the server decides what to offer
// from the statuses it has, and a device whose `success` still waits would be offered the same
// deployment again (the server then records `already-installed` after the `success`). So a
// device with reports waiting gets them replayed first; while some still wait, its `next` gets
// the upstream error (the client asks again at its next poll), whatever route would serve it.

const NEXT = /^\/api\/devices\/v[12]\/deployments\/device\/deployments\/next$/;

export function reportsFirst(router: Router, desk: ReportDesk): Router {
  return {
    select(req) {
      const route = router.select(req);
      if (!NEXT.test(pathnameOf(req))) return route;
      return {
        ...route,
        async handle(req, res, ctx) {
          const authorization = req.headers.authorization;
          const device = deviceIdFromAuthorization(authorization);
          if (device && !(await desk.settle(device, authorization))) {
            req.resume();
            ctx.log.debug('deployments/next held back: reports of the device wait for upstream');
            return replyError(req, res, new GatewayError('UPSTREAM_UNREACHABLE', 'upstream server unreachable: reports of this device are waiting for it'), ctx.log);
          }
          // Settling may have waited (a worker asks the primary): a device that left meanwhile
          // is not forwarded, its half-sent body would hold an upstream connection open.
          if (req.destroyed || req.socket.destroyed) return void ctx.log.debug('device left while its next waited for its reports', { status: 499 });
          return route.handle(req, res, ctx);
        },
      };
    },
  };
}
