import type { X509Certificate } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { GatewayError } from '../http/gateway-error';
import { authKeyOf, replyWithIssuedToken, TOKEN_GIVEN_BACK, type IssuedTokens } from './issued-tokens';
import type { RequestContext, Route } from '../http/route';
import { createForwarder } from '../proxy/forward';
import type { BodyTap } from '../proxy/upstream-handler';
import type { Upstream } from '../proxy/upstream';
import { AUTH_REQUESTS_PATH, type AuthRequest, MAX_AUTH_BODY_BYTES, parseAuthRequest, sameKey, verifyAuthSignature } from './auth-request';
import type { Preauthorizer } from './preauthorize';
import { readBoundedBody } from '../http/bounded-body';
import { mtlsMetrics } from '../observe/metrics';
import { checkIdentityBinding, type IdentityBinding } from './identity-binding';

// POST /api/devices/v1/authentication/auth_requests with mTLS on, in order:
// client certificate present (the listener has verified it) → body read with a cap → parsed
// → X-MEN-Signature verified with the request's key → [key bound to the certificate] →
// [identity bound to the certificate] → preauthorized upstream (never over another key) → the original bytes forwarded → the server's answer (the device
// JWT) returned unchanged.

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
  /**
   * With the report journal: tokens upstream issued, given back to the same key while
   * upstream (or its management API) is unreachable, as lib/journal/auth-during-outage.ts does.
   */
  outageTokens?: IssuedTokens;
}

/** Bounds what is kept of an auth answer: a device token is about 1 KB. */

export function createAuthRoute(options: AuthRouteOptions): Route {
  const { upstream, preauthorizer } = options;
  const forwarder = createForwarder(upstream);
  /** Upstream's answer to a forwarded auth request: what the preauthorization cache and the kept tokens learn. */
  const learn = (request: AuthRequest, status: number, contentType: string | undefined): BodyTap | undefined => {
    // Preauthorized and still refused (rejected in the UI meanwhile, or a server that lost
    // it): the next attempt must preauthorize again instead of trusting the cache.
    if (status === 401) preauthorizer.forget(request);
    const tokens = options.outageTokens;
    if (!tokens) return undefined;
    const key = keyOf(request);
    if (status !== 200) return void tokens.forget(key);
    // The body streams to the device as usual; a copy is kept once complete.
    const chunks: Buffer[] = [];
    let size = 0;
    return {
      data(chunk) {
        size += chunk.length;
        if (size <= MAX_AUTH_BODY_BYTES) chunks.push(chunk);
      },
      end() {
        if (size <= MAX_AUTH_BODY_BYTES) tokens.remember(key, Buffer.concat(chunks), contentType);
      },
    };
  };

  /** Upstream could not be reached for this request: a kept token if there is one, else the error. */
  const givenBack = (request: AuthRequest, res: ServerResponse, ctx: RequestContext, cause: unknown): boolean => {
    const kept = options.outageTokens?.lookup(keyOf(request));
    if (!kept || res.headersSent) return false;
    ctx.log.info(TOKEN_GIVEN_BACK, { reason: (cause as Error)?.message ?? String(cause), expires: new Date(kept.expiresAt).toISOString() });
    replyWithIssuedToken(res, kept, ctx.requestId);
    return true;
  };

  async function handle(req: IncomingMessage, res: ServerResponse, ctx: RequestContext): Promise<void> {
    const cert = ctx.protocol === 'https' ? options.certificateOf(req.socket as TLSSocket) : undefined;
    if (!cert)
      throw new GatewayError(
        'FORBIDDEN',
        'client certificate required: mTLS is enabled, authenticate over HTTPS with a client certificate',
      );
    const raw = await readBoundedBody(req, MAX_AUTH_BODY_BYTES);
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
    try {
      await preauthorizer.ensure(request, { clientAddress: ctx.clientAddress, requestId: ctx.requestId });
    } catch (err) {
      // The management API unreachable (5xx): a device upstream already admitted keeps its token.
      if (err instanceof GatewayError && err.status >= 500 && givenBack(request, res, ctx, err)) return;
      // Refused (a rejected key, an identity held by another): no kept token for it during an outage either.
      if (err instanceof GatewayError && err.status === 403) options.outageTokens?.forget(keyOf(request));
      throw err;
    }
    mtlsMetrics.admitted();
    ctx.log.info('device admitted by client certificate', { serial: cert.serialNumber, subject: cert.subject.replace(/\n/g, ', ') });

    // Same bytes; only the framing may change (a chunked body gets a Content-Length).
    forwarder.forward(req, res, ctx, {
      body: raw,
      onResponse: (status, headers) => learn(request, status, headers['content-type']),
      onFailure: (err) => givenBack(request, res, ctx, err),
    });
  }

  return {
    name: 'mtls-auth-request',
    methods: ['POST'],
    match: (path) => path === AUTH_REQUESTS_PATH,
    handle,
  };
}

function keyOf(request: AuthRequest): string {
  return authKeyOf(JSON.stringify(request.identity), request.pubkeyPem);
}
