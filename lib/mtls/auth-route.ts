import type { X509Certificate } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { GatewayError } from '../http/gateway-error';
import type { Handler, RequestContext } from '../http/route';
import { createForwarder } from '../proxy/forward';
import type { Upstream } from '../proxy/upstream';
import { MAX_AUTH_BODY_BYTES, parseAuthRequest, sameKey, verifyAuthSignature } from './auth-request';
import type { Preauthorizer } from './preauthorize';
import { readRequestBodyOrRefuse } from '../http/bounded-body';
import { mtlsMetrics } from '../observe/metrics';
import { checkIdentityBinding, type IdentityBinding } from './identity-binding';

// POST /api/devices/v1/authentication/auth_requests with mTLS on, in order:
// client certificate present (the listener has verified it) → body read with a cap → parsed
// → X-MEN-Signature verified with the request's key → [key bound to the certificate] →
// [identity bound to the certificate] → preauthorized upstream (never over another key) → the
// original bytes forwarded → the server's answer (the device JWT) returned unchanged. With the report journal on, its wrapper sits around this handler
// (lib/journal/kept-tokens.ts): it may have read the body already (ctx.body), and it answers an
// outage with the token upstream last issued, as it does without mTLS.

export interface AuthRouteOptions {
  upstream: Upstream;
  /**
   * The client certificate verified at the connection's handshake (undefined when none was
   * admitted): never the peer's current one, which a renegotiation could have replaced.
   */
  certificateOf(socket: TLSSocket): X509Certificate | undefined;
  preauthorizer: Preauthorizer;
  requireKeyMatchesCertificate: boolean;
  /** Features.mTLS.IdentityAttribute/IdentityCertificateField; undefined when IdentityAttribute is empty. */
  identityBinding?: IdentityBinding;
}

export function createAuthHandler(options: AuthRouteOptions): Handler {
  const { upstream, preauthorizer } = options;
  const forwarder = createForwarder(upstream);

  async function handle(req: IncomingMessage, res: ServerResponse, ctx: RequestContext): Promise<void> {
    const cert = ctx.protocol === 'https' ? options.certificateOf(req.socket as TLSSocket) : undefined;
    if (!cert)
      throw new GatewayError(
        'FORBIDDEN',
        'client certificate required: mTLS is enabled, authenticate over HTTPS with a client certificate',
      );
    const raw = await readRequestBodyOrRefuse(req, ctx, MAX_AUTH_BODY_BYTES);
    const parsed = parseAuthRequest(raw);
    if (!parsed.ok) throw new GatewayError('BAD_REQUEST', parsed.error);
    const request = parsed.request;
    const signature = req.headers['x-men-signature'];
    if (typeof signature !== 'string' || signature === '') throw new GatewayError('BAD_REQUEST', 'missing request signature header');
    if (!verifyAuthSignature(raw, request.key, signature)) throw new GatewayError('BAD_REQUEST', 'signature verification failed');
    if (options.requireKeyMatchesCertificate && !sameKey(request.key, cert.publicKey)) {
      throw new GatewayError('BAD_REQUEST', "certificate key and auth request key don't match");
    }
    if (options.identityBinding) {
      const bound = checkIdentityBinding(request.identity, cert, options.identityBinding);
      if (!bound.ok) {
        mtlsMetrics.refused(bound.reason);
        ctx.log.warn('auth request refused: identity not bound to the certificate', { reason: bound.reason, serial: cert.serialNumber });
        throw new GatewayError('BAD_REQUEST', `auth request: ${bound.reason}`);
      }
    }
    // Refused (403) or the management API unreachable (5xx): thrown, for the route (and the
    // journal's wrapper, which gives an admitted device its kept token on a 5xx).
    await preauthorizer.ensure(request, { clientAddress: ctx.clientAddress, requestId: ctx.requestId });
    mtlsMetrics.admitted();
    ctx.log.info('device admitted by client certificate', { serial: cert.serialNumber, subject: cert.subject.replace(/\n/g, ', ') });

    // Same bytes; only the framing may change (a chunked body gets a Content-Length).
    forwarder.forward(req, res, ctx, {
      body: raw,
      // Preauthorized and still refused (rejected in the UI meanwhile, or a server that lost
      // it): the next attempt must preauthorize again instead of trusting the cache.
      onResponse: (status) => void (status === 401 && preauthorizer.forget(request)),
    });
  }

  return handle;
}
