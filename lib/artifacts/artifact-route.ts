import { GatewayError } from '../http/gateway-error';
import { replyError } from '../http/reply-error';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Handler, RequestContext } from '../http/route';
import { redactUrl } from '../observe/log';
import type { ArtifactServer } from './artifact-server';
import type { DomainAllowlist } from './domain-allowlist';
import { linkError, type LinkSigner } from './signed-link';

// The route that serves the signed links the deployments/next rewrite hands out
// (lib/deployments/artifacts-proxy.ts wires both). A link request reads top to bottom: verify the signature
// (403, nothing fetched) → the origin host is still whitelisted → the artifact server.

export interface ArtifactRoutesDeps {
  signer: LinkSigner;
  allowlist: DomainAllowlist;
  artifactServer: ArtifactServer;
}

export function createArtifactLinkHandler(deps: ArtifactRoutesDeps): Handler {
  return async (req, res, ctx) => {
    const check = deps.signer.verify(req.url ?? '');
    if (!check.ok) {
      ctx.log.warn('artifact link refused', { reason: check.reason, detail: check.detail, client: ctx.clientAddress });
      throw linkError(check);
    }
    // Whitelist checked again: the list may have shrunk since the link was minted.
    if (!deps.allowlist.allows(check.origin)) {
      ctx.log.warn(`${check.origin.host} returned by Mender server is not whitelisted`, { origin: redactUrl(check.origin.href) });
      throw new GatewayError('FORBIDDEN', 'artifact origin is not whitelisted');
    }
    await deps.artifactServer.serve(req, res, check.origin, ctx).catch((err: unknown) => answerArtifactError(req, res, err, ctx));
  };
}

/**
 * The one place an artifact download's failure is answered, whichever server (cache or origin)
 * threw it: the error's status and JSON body, or nothing for a device that left.
 */
export function answerArtifactError(req: IncomingMessage, res: ServerResponse, err: unknown, ctx: RequestContext): void {
  // A device that hung up mid-download is routine (it resumes later), not a 5xx.
  if (res.destroyed && !(err instanceof GatewayError)) {
    ctx.log.debug('device left during the artifact download', { status: 499 });
    return;
  }
  replyError(req, res, err, ctx.log);
}
