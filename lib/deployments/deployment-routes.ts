import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { ArtifactServer } from '../artifacts/artifact-server';
import type { LinkSigner } from '../artifacts/signed-link';
import { GatewayError } from '../http/gateway-error';
import type { Handler, RequestContext } from '../http/route';
import { redactUrl } from '../observe/log';
import { createForwarder } from '../proxy/forward';
import type { Upstream } from '../proxy/upstream';
import type { DomainAllowlist } from '../artifacts/domain-allowlist';
import { readInstructions } from './instructions-rewriter';
import { rewriteInstructions } from './rewrite-instructions';

// The three forms of deployments/next (device-protocol.md §4.1): POST v2, POST v1, GET v1.
// Their 200 JSON answers get the artifact link rewritten; everything else (204 "no update",
// the 404 that makes the client fall back from v2 to v1, 401, 409, 5xx) streams through
// untouched on the pass-through's lean path, decided from the status line and headers.

export interface DeploymentRoutesDeps {
  upstream: Upstream;
  signer: LinkSigner;
  allowlist: DomainAllowlist;
  linkTtlMs: number;
  /** Told about every rewritten artifact (the cache may start filling). */
  artifactServer?: Pick<ArtifactServer, 'prewarm'>;
  /** Body cap, for tests; default 1 MiB. */
  capBytes?: number;
}

/** The handler of all three forms of `next` (lib/device-api.ts names them). */
export function createNextHandler(deps: DeploymentRoutesDeps): Handler {
  const forwarder = createForwarder(deps.upstream);
  const rewrite = (body: Readable, headers: IncomingHttpHeaders, ctx: RequestContext) => rewriteBody(body, headers, ctx, deps);
  return (req, res, ctx) => forwarder.forward(req, res, ctx, { rewrite });
}

async function rewriteBody(body: Readable, headers: IncomingHttpHeaders, ctx: RequestContext, deps: DeploymentRoutesDeps): Promise<string> {
  const text = await readInstructions(body, headers, deps.capBytes);
  const result = rewriteInstructions(text, {
    signer: deps.signer,
    allowlist: deps.allowlist,
    linkTtlMs: deps.linkTtlMs,
    now: new Date(),
    ...(headers.date ? { serverDate: new Date(headers.date) } : {}),
  });
  switch (result.kind) {
    case 'rewritten':
      ctx.log.info('artifact link rewritten to the gateway', {
        origin: redactUrl(result.origin.href),
        expires: result.expiresAt.toISOString(),
      });
      deps.artifactServer?.prewarm?.(result.origin);
      return result.body;
    case 'not-whitelisted':
      // The product's wording (mender-gateway changelog 2.1.0); the device gets the
      // instructions as the server sent them, and the gateway never fetches that host.
      ctx.log.warn(`${result.host} returned by Mender server is not whitelisted`);
      return text;
    case 'no-link':
      ctx.log.debug(`deployment instructions passed on unchanged: ${result.detail}`);
      return text;
    case 'malformed':
      throw new GatewayError('UPSTREAM_BAD_RESPONSE', result.detail);
  }
}
