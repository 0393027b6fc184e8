import type { GatewayConfig } from '../config/types';
import { parseDuration } from '../config/parse-duration';
import { createArtifactLinkHandler } from '../artifacts/artifact-route';
import type { ArtifactServer } from '../artifacts/artifact-server';
import { createDomainAllowlist } from '../artifacts/domain-allowlist';
import { resolveLinkSecret } from '../artifacts/link-secret';
import { createOriginArtifactServer } from '../artifacts/serve-from-origin';
import { createLinkSigner } from '../artifacts/signed-link';
import { createArtifactCache } from '../cache/artifact-cache';
import type { Feature } from '../http/feature';
import type { Logger } from '../observe/log';
import { cacheMetrics } from '../observe/metrics';
import { cacheView } from '../observe/status-page/cache-view';
import type { Upstream } from '../proxy/upstream';
import { createNextHandler } from './deployment-routes';

// Features.ArtifactsProxy as a feature (lib/http/feature.ts): the deployments/next rewrite (this
// folder) hands out signed links that the artifact link endpoint (lib/artifacts) serves; both
// share one signer, allowlist and artifact server: the on-disk cache with
// ArtifactsCache.Enabled (lib/cache), else straight from the origin.

export type ArtifactsProxySlice = GatewayConfig['Features']['ArtifactsProxy'];

export interface ArtifactsProxyDeps {
  upstream: Upstream;
  log: Logger;
}

export async function provisionArtifactsProxy(
  settings: ArtifactsProxySlice,
  deps: ArtifactsProxyDeps,
): Promise<Feature<ArtifactsProxySlice>> {
  const { upstream, log } = deps;
  const cacheSettings = settings.ArtifactsCache;
  if (!settings.GatewayURL) throw new Error('Features.ArtifactsProxy.GatewayURL must be set when the artifact proxy is enabled');
  // What may refuse the settings comes before the cache opens (its lock, its timers).
  const allowlist = createDomainAllowlist(settings.DomainWhitelist);
  const linkTtlMs = parseDuration(cacheSettings.LinkExpireDuration);
  const cache = cacheSettings.Enabled
    ? await createArtifactCache({ config: cacheSettings, log, agentFor: upstream.originAgent, timeoutMs: upstream.timeoutMs })
    : undefined;
  // The secret may live in the cache's folder, made just above.
  const secret = await resolveLinkSecret(cacheSettings.SignatureSecret, cacheSettings.Path, log).catch(async (err: unknown) => {
    await cache?.close();
    throw err;
  });
  if (cache)
    cacheMetrics.watch(() => ({ entries: cache.index.all().length, bytes: cache.index.usedBytes(), fillsInProgress: cache.activeFills }));
  const artifactServer: ArtifactServer = cache ?? createOriginArtifactServer({ upstream });
  const signer = createLinkSigner({ secret, gatewayUrl: settings.GatewayURL, lifetimeMs: linkTtlMs });
  log.info('artifact proxy enabled', {
    gateway_url: settings.GatewayURL,
    whitelist: allowlist.domains.join(','),
    link_expire: cacheSettings.LinkExpireDuration,
  });
  const next = createNextHandler({ upstream, signer, allowlist, linkTtlMs, artifactServer });
  return {
    name: 'ArtifactsProxy',
    handlers: {
      'deployments-next-v2': next,
      'deployments-next-v1': next,
      'artifact-link': createArtifactLinkHandler({ signer, allowlist, artifactServer }),
    },
    views: { cache: cache && cacheView(cache) },
    async close() {
      await artifactServer.close?.();
    },
  };
}
