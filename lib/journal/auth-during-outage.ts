import type { IncomingMessage, ServerResponse } from 'node:http';
import { type BoundedBody, readBounded } from '../http/bounded-body';
import { GatewayError, upstreamError } from '../http/gateway-error';
import { replyError } from '../http/reply-error';
import type { RequestContext, Route } from '../http/route';
import { AUTH_REQUESTS_PATH, MAX_AUTH_BODY_BYTES, parseAuthRequest, verifyAuthSignature } from '../mtls/auth-request';
import { authKeyOf, IssuedTokens, replyWithIssuedToken, TOKEN_GIVEN_BACK } from '../mtls/issued-tokens';
import { createForwarder } from '../proxy/forward';
import type { Upstream } from '../proxy/upstream';
import { answerHeaders, callUpstream, replayHeaders, UNREACHABLE_STATUSES } from './upstream-call';

// With Features.ReportJournal, device auth requests go upstream as usual (the body byte for
// byte) and the token upstream issues is remembered (mtls/issued-tokens.ts). While upstream cannot
// be reached, a device that sends a correctly signed auth request for the same identity and key
// gets that token back, until its own expiry, instead of a 502. Why: Mender client 5.1 fetches
// a new token before ArtifactCommit (3.4 kept using its old one); with a 502 its mender-update
// gets no token, cannot send the `installing` status even to the journal, and waits 60 s per
// retry (client5-outage.test.ts).

export interface OutageAuthOptions {
  upstream: Upstream;
  /** Told of every upstream answer: one below 500 ends the journal's outage at once. */
  onUpstreamAnswer?: (status: number) => void;
}

export function createOutageAuthRoute(opts: OutageAuthOptions, tokens = new IssuedTokens()): Route {
  const forwarder = createForwarder(opts.upstream);

  async function handle(req: IncomingMessage, res: ServerResponse, ctx: RequestContext): Promise<void> {
    let read: BoundedBody;
    try {
      read = await readBounded(req, MAX_AUTH_BODY_BYTES);
    } catch (err) {
      ctx.log.debug('device left while sending its auth request', { err: err as Error, status: 499 });
      return;
    }
    if (read.kind === 'too-large') {
      forwarder.forward(req, res, ctx, { body: read.stream });
      return;
    }
    const body = read.body;
    const parsed = parseAuthRequest(body);
    const key = parsed.ok ? authKeyOf(JSON.stringify(parsed.request.identity), parsed.request.pubkeyPem) : undefined;
    const fallback = (cause: unknown): void => {
      const kept = key === undefined ? undefined : tokens.lookup(key);
      if (parsed.ok && kept && verifyAuthSignature(body, parsed.request.key, header(req, 'x-men-signature'))) {
        ctx.log.info(TOKEN_GIVEN_BACK, {
          reason: (cause as Error).message ?? String(cause),
          expires: new Date(kept.expiresAt).toISOString(),
        });
        replyWithIssuedToken(res, kept, ctx.requestId);
        return;
      }
      replyError(req, res, cause instanceof GatewayError ? cause : upstreamError(cause), ctx.log);
    };

    let answer: IncomingMessage;
    try {
      answer = await callUpstream(opts.upstream, {
        method: 'POST',
        path: req.url ?? AUTH_REQUESTS_PATH,
        headers: replayHeaders(req.headers),
        body,
      });
    } catch (err) {
      return fallback(err);
    }
    const status = answer.statusCode ?? 502;
    opts.onUpstreamAnswer?.(status);
    const answered = await readBounded(answer, MAX_AUTH_BODY_BYTES).catch((err: unknown) => err as Error);
    if (answered instanceof Error || answered.kind === 'too-large') {
      answer.destroy();
      return fallback(new GatewayError('UPSTREAM_BAD_RESPONSE', 'upstream auth answer cut or too large'));
    }
    if (UNREACHABLE_STATUSES.has(status)) return fallback(new GatewayError('UPSTREAM_UNREACHABLE', `upstream answered ${status}`));
    if (key !== undefined) {
      if (status === 200) tokens.remember(key, answered.body, header(answer, 'content-type'));
      else tokens.forget(key);
    }
    res.writeHead(status, { ...answerHeaders(answer.headers), 'Content-Length': answered.body.length });
    res.end(answered.body);
  }

  return { name: 'auth-request', methods: ['POST'], match: (path) => path === AUTH_REQUESTS_PATH, handle };
}

function header(msg: IncomingMessage, name: string): string | undefined {
  const v = msg.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
