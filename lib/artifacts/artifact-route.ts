import type { GatewayConfig } from '../config/types';
import { parseDuration } from '../config/parse-duration';
import { createDeploymentRoutes } from '../deployments/deployment-routes';
import { createDomainAllowlist, type DomainAllowlist } from '../deployments/domain-allowlist';
import { GatewayError } from '../http/gateway-error';
import { replyError } from '../http/reply-error';
import type { Route } from '../http/route';
import type { Logger } from '../observe/log';
import { redactUrl } from '../observe/log';
import type { Upstream } from '../proxy/upstream';
import type { ArtifactServer } from './artifact-server';
import { resolveLinkSecret } from './link-secret';
import { createOriginArtifactServer } from './serve-from-origin';
import { ARTIFACT_LINK_PREFIX, createLinkSigner, linkError, type LinkSigner } from './signed-link';

// Features.ArtifactsProxy: the deployments/next rewrite plus the route that serves the
// signed links it hands out. A link request reads top to bottom: verify the signature
// (403, nothing fetched) → the origin host is still whitelisted → the artifact server.

export interface ArtifactRoutesDeps {
  signer: LinkSigner;
  allowlist: DomainAllowlist;
  artifactServer: ArtifactServer;
}

export function createArtifactRoutes(deps: ArtifactRoutesDeps): Route[] {
  return [
    {
      name: 'artifact-link',
      methods: ['GET', 'HEAD'],
      match: (path) => path.startsWith(ARTIFACT_LINK_PREFIX),
      sensitivePath: true,
      async handle(req, res, ctx) {
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
        try {
          await deps.artifactServer.serve(req, res, check.origin, ctx);
        } catch (err) {
          // A device that hung up mid-download is routine (it resumes later), not a 5xx.
          if (res.destroyed && !(err instanceof GatewayError)) {
            ctx.log.debug('device left during the artifact download', { status: 499 });
            return;
          }
          replyError(req, res, err, ctx.log);
        }
      },
    },
  ];
}

export interface ArtifactProxyDeps {
  config: Readonly<GatewayConfig>;
  log: Logger;
  upstream: Upstream;
  /** The cache's server when ArtifactsCache is enabled; default: stream from the origin. */
  artifactServer?: ArtifactServer;
}

export interface ArtifactProxy {
  routes: Route[];
  close(): Promise<void>;
}

/** Everything Features.ArtifactsProxy adds to the route table (none when disabled). */
export async function createArtifactProxy(deps: ArtifactProxyDeps): Promise<ArtifactProxy> {
  const settings = deps.config.Features.ArtifactsProxy;
  if (!settings.Enabled) return { routes: [], close: async () => undefined };
  const cache = settings.ArtifactsCache;
  if (!settings.GatewayURL) throw new Error('Features.ArtifactsProxy.GatewayURL must be set when the artifact proxy is enabled');
  const secret = await resolveLinkSecret(cache.SignatureSecret, cache.Path, deps.log);
  const signer = createLinkSigner({ secret, gatewayUrl: settings.GatewayURL });
  const allowlist = createDomainAllowlist(settings.DomainWhitelist);
  const artifactServer = deps.artifactServer ?? createOriginArtifactServer({ upstream: deps.upstream });
  const linkTtlMs = parseDuration(cache.LinkExpireDuration);
  deps.log.info('artifact proxy enabled', { gateway_url: settings.GatewayURL, whitelist: allowlist.domains.join(','), link_expire: cache.LinkExpireDuration });
  const routes = [
    ...createDeploymentRoutes({ upstream: deps.upstream, signer, allowlist, linkTtlMs, artifactServer }),
    ...createArtifactRoutes({ signer, allowlist, artifactServer }),
  ];
  return {
    routes,
    async close() {
      await artifactServer.close?.();
    },
  };
}
