import type { IncomingMessage } from 'node:http';
import type { GatewayConfig } from '../config/types';
import { refuseSocket, sendJsonError } from '../http/reply-error';
import { ALIVE_PATH } from '../device-api';
import type { ListenerGuard } from '../http/feature';
import { pathnameOf } from '../http/route';
import type { Logger } from '../observe/log';
import { mtlsMetrics } from '../observe/metrics';

// With mTLS on, the plain HTTP listener would let a device whose certificate was blocklisted or
// revoked keep using its unexpired token: no certificate exists there to check. So it serves
// only the health probe (load balancers and k8s probes use it) and refuses everything else,
// WebSocket upgrades included, unless Features.mTLS.AllowPlainHTTP. The probe's path is
// compared as sent: an absolute-form target, an encoding or a dot segment is refused, never
// normalised into the probe.

export const ALLOW_PLAIN_HTTP_KEY = 'Features.mTLS.AllowPlainHTTP';
/** The route name of a refusal in the access log and mender_gateway_http_requests_total. */
export const PLAIN_HTTP_REFUSED = 'plain-http-refused';
const MESSAGE = `mTLS is enabled: use HTTPS with a client certificate (plain HTTP serves only the health probe unless ${ALLOW_PLAIN_HTTP_KEY})`;

type Settings = Pick<GatewayConfig, 'HTTP'> & { Features: { mTLS: Pick<GatewayConfig['Features']['mTLS'], 'Enabled' | 'AllowPlainHTTP'> } };

/** The start-up and check-config warning: devices may skip mTLS over plain HTTP. */
export function plainHttpExposure(config: Settings): string | undefined {
  const mtls = config.Features.mTLS;
  if (!mtls.Enabled || !mtls.AllowPlainHTTP || !config.HTTP.Enabled) return undefined;
  return `${ALLOW_PLAIN_HTTP_KEY}: devices may use the device API over plain HTTP (HTTP.Listen ${config.HTTP.Listen}) without a client certificate; the blocklist and CRL do not apply there`;
}

/** Whether the HTTP listener may pass a request on: the health probe, exactly. */
export function isHealthProbe(req: IncomingMessage): boolean {
  return (req.method === 'GET' || req.method === 'HEAD') && pathnameOf(req) === ALIVE_PATH;
}

/** The guard for the HTTP listener, or undefined when it has nothing to guard (warning logged if opted out). */
export function createPlainHttpGuard(config: Settings, log: Logger): ListenerGuard | undefined {
  if (!config.Features.mTLS.Enabled || !config.HTTP.Enabled) return undefined;
  const exposure = plainHttpExposure(config);
  if (exposure) {
    log.warn(exposure);
    return undefined;
  }
  return {
    // The path may be a signed artifact link (a credential): the log shows the route name.
    refused: { name: PLAIN_HTTP_REFUSED, sensitivePath: true, local: true },
    admitRequest(req, res, ctx) {
      if (isHealthProbe(req)) return true;
      mtlsMetrics.refused('plain HTTP');
      req.resume();
      sendJsonError(res, 403, MESSAGE, ctx.requestId, { Connection: 'close' });
      return false;
    },
    admitUpgrade(req, socket, ctx) {
      mtlsMetrics.refused('plain HTTP');
      ctx.log.warn('websocket refused: plain HTTP while mTLS is on', {
        method: req.method,
        route: PLAIN_HTTP_REFUSED,
        status: 403,
        client: ctx.clientAddress,
        proto: ctx.protocol,
        key: ALLOW_PLAIN_HTTP_KEY,
      });
      refuseSocket(socket, 403, MESSAGE, ctx.requestId);
      return false;
    },
  };
}
