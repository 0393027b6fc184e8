import type { IncomingMessage } from 'node:http';
import { MAX_AUTH_BODY_BYTES, parseAuthRequest, verifyAuthSignature } from '../mtls/auth-request';
import { readBodyUnlessLeft } from '../http/bounded-body';
import type { Wrapper } from '../http/feature';
import { GatewayError } from '../http/gateway-error';
import { ANSWERED, type BodyTap } from '../http/route';
import { authKeyOf, type IssuedTokens, replyWithIssuedToken, TOKEN_GIVEN_BACK } from './issued-tokens';
import { UNREACHABLE_STATUSES } from './upstream-call';

// The journal's wrapper around the one auth route (the pass-through, or mTLS's admission when
// it is on). Auth requests go upstream as before, the body byte for byte, and the token upstream
// issues is remembered (issued-tokens.ts). While upstream cannot be reached (no connection, no
// answer in time, a 502/503/504 from a proxy in front of it, or mTLS's management API down), a
// device that sends a correctly signed auth request for the same identity and key gets that
// token back, until its own expiry, instead of the error. Why: Mender client 5.1 fetches a new
// token before ArtifactCommit (3.4 kept using its old one); without one its mender-update cannot
// send the `installing` status even to the journal, and waits 60 s per retry
// (client5-outage.test.ts). A device upstream refused (403, or any answer but 200) has no kept
// token any more.

export interface KeptTokensHooks {
  /** Every status upstream answered an auth request with: one below 500 ends an outage. */
  onUpstreamAnswer(status: number): void;
}

export function keptTokensWrapper(tokens: IssuedTokens, hooks: KeptTokensHooks): Wrapper {
  return (inner) => async (req, res, ctx) => {
    const read = await readBodyUnlessLeft(req, ctx, MAX_AUTH_BODY_BYTES, 'auth request');
    if (!read) return;
    if (read.kind === 'too-large') {
      ctx.body ??= read.stream;
      return inner(req, res, ctx);
    }
    const body = read.body;
    ctx.body = body;
    const parsed = parseAuthRequest(body);
    // Not an auth request the gateway can read: nothing to keep or give back; whoever answers judges it.
    if (!parsed.ok) return inner(req, res, ctx);
    const request = parsed.request;
    const key = authKeyOf(JSON.stringify(request.identity), request.pubkeyPem);

    // Only the holder of the device's key may take its kept token, or make it be forgotten.
    const signed = (): boolean => verifyAuthSignature(body, request.key, header(req, 'x-men-signature'));
    const giveBack = (cause: unknown): boolean => {
      const kept = tokens.lookup(key);
      if (!kept || res.headersSent || res.destroyed || !signed()) return false;
      ctx.log.info(TOKEN_GIVEN_BACK, {
        reason: (cause as Error)?.message ?? String(cause),
        expires: new Date(kept.expiresAt).toISOString(),
      });
      replyWithIssuedToken(res, kept, ctx.requestId);
      return true;
    };
    ctx.upstreamHooks = {
      onResponse(status, headers) {
        hooks.onUpstreamAnswer(status);
        if (UNREACHABLE_STATUSES.has(status)) return giveBack(new Error(`upstream answered ${status}`)) ? ANSWERED : undefined;
        if (status !== 200) return void (signed() && tokens.forget(key));
        return keepWhenComplete((token) => tokens.remember(key, token, headers['content-type'] as string | undefined));
      },
      onFailure: (err) => giveBack(err),
    };
    try {
      await inner(req, res, ctx);
    } catch (err) {
      // Upstream refused the device (mTLS's preauthorization, after the signature and the
      // certificate were checked): no kept token for it during an outage either. Any other 403
      // (no certificate, say) forgets nothing: it proves nothing of the device.
      if (err instanceof GatewayError && err.code === 'DEVICE_REFUSED') tokens.forget(key);
      // mTLS's management API unreachable: a device upstream admitted before keeps its token.
      else if (err instanceof GatewayError && err.status >= 500 && giveBack(err)) return;
      throw err;
    }
  };
}

/** A copy of the answer's body as it streams to the device, kept once complete (a token is about 1 KB). */
function keepWhenComplete(keep: (body: Buffer) => void): BodyTap {
  const chunks: Buffer[] = [];
  let size = 0;
  return {
    data(chunk) {
      size += chunk.length;
      if (size <= MAX_AUTH_BODY_BYTES) chunks.push(chunk);
    },
    end() {
      if (size <= MAX_AUTH_BODY_BYTES) keep(Buffer.concat(chunks));
    },
  };
}

function header(msg: IncomingMessage, name: string): string | undefined {
  const v = msg.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
