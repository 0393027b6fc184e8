import type { GatewayConfig } from '../config/types';
import type { Feature } from '../http/feature';
import type { Logger } from '../observe/log';
import type { Upstream } from '../proxy/upstream';
import { createMtlsAdmission } from './mtls-admission';
import { createPlainHttpGuard } from './plain-http-guard';

// Features.mTLS as a feature (lib/http/feature.ts): the auth_requests endpoint, a guard on the
// HTTPS listener (client certificates at the handshake and on every request), and one on the
// HTTP listener (the health probe only, unless AllowPlainHTTP). Its slice carries the HTTP
// listener's settings too: the guard and its warning depend on whether plain HTTP is served.

export interface MtlsSlice {
  mTLS: GatewayConfig['Features']['mTLS'];
  HTTP: GatewayConfig['HTTP'];
}

export interface MtlsDeps {
  upstream: Upstream;
  log: Logger;
}

/** The route name of a request refused by the client-certificate check (access log, metrics). */
export const MTLS_REFUSED = 'mtls-refused';

export function provisionMtls(slice: MtlsSlice, deps: MtlsDeps): Feature<MtlsSlice> {
  const admission = createMtlsAdmission(slice.mTLS, deps.upstream, deps.log);
  const plain = createPlainHttpGuard({ HTTP: slice.HTTP, Features: { mTLS: slice.mTLS } }, deps.log);
  return {
    name: 'mTLS',
    handlers: { 'auth-request': admission.authHandler },
    guards: {
      https: {
        // The path may be a signed artifact link (a credential): the log shows the route name.
        refused: { name: MTLS_REFUSED, sensitivePath: true, local: true },
        tlsOptions: admission.tlsOptions,
        attach: (server) => admission.attach(server),
        admitRequest: (req, res, ctx) => admission.admitRequest(req, res, ctx),
        admitUpgrade: (req, socket, ctx) => admission.admitUpgrade(req, socket, ctx),
      },
      ...(plain && { http: plain }),
    },
    reload(next) {
      const ca = admission.reload(next.mTLS);
      return ca === undefined ? undefined : { ca, applied: () => admission.caApplied() };
    },
    close: () => admission.close(),
  };
}
