import type { GatewayConfig } from '../config/types';
import { parseDuration } from '../config/parse-duration';
import { createArtifactRoutes } from '../artifacts/artifact-route';
import type { ArtifactServer } from '../artifacts/artifact-server';
import { createDomainAllowlist } from '../artifacts/domain-allowlist';
import { resolveLinkSecret } from '../artifacts/link-secret';
import { createOriginArtifactServer } from '../artifacts/serve-from-origin';
import { createLinkSigner } from '../artifacts/signed-link';
import type { Route } from '../http/route';
import type { Logger } from '../observe/log';
import type { Upstream } from '../proxy/upstream';
import { createDeploymentRoutes } from './deployment-routes';

// Features.ArtifactsProxy as a whole: the deployments/next rewrite (this folder) hands out
// signed links that the artifact route (lib/artifacts) serves; both share one signer,
// allowlist and artifact server.

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
  deps.log.info('artifact proxy enabled', {
    gateway_url: settings.GatewayURL,
    whitelist: allowlist.domains.join(','),
    link_expire: cache.LinkExpireDuration,
  });
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
