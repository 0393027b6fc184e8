import type { GatewayConfig } from '../config/types';
import type { Logger } from '../observe/log';
import type { Upstream } from '../proxy/upstream';
import { errorText, managementCall } from '../mtls/management-call';
import { createManagementSession } from '../mtls/management-session';

// `cache prewarm --artifact ID / --deployment ID`: the artifacts' download links from the
// Mender server's management API, as the configured user (Features.mTLS.MenderUsername and
// MenderPassword, the user the gateway preauthorizes devices with). The links are presigned
// storage URLs, the same the server hands devices in deployments/next.

export interface PrewarmTarget {
  /** What the operator named it by (artifact id, or the URL without its query). */
  label: string;
  url: URL;
}

const DEPLOYMENT = (id: string) => `/api/management/v1/deployments/deployments/${encodeURIComponent(id)}`;
const DOWNLOAD = (id: string) => `/api/management/v1/deployments/artifacts/${encodeURIComponent(id)}/download`;

export class LinkError extends Error {}

export async function artifactTargets(
  config: Readonly<GatewayConfig>,
  upstream: Upstream,
  log: Logger,
  ids: { artifacts: string[]; deployments: string[] },
): Promise<PrewarmTarget[]> {
  const { MenderUsername: username, MenderPassword: password } = config.Features.mTLS;
  if (!username || !password) {
    throw new LinkError(
      '--artifact and --deployment need the management user: set Features.mTLS.MenderUsername and MenderPassword (MTLS_MENDER_USERNAME, MTLS_MENDER_PASSWORD)',
    );
  }
  const session = createManagementSession({ upstream, username, password, log });
  const get = async (path: string, what: string): Promise<unknown> => {
    const token = await session.token().catch(() => {
      throw new LinkError(
        `cannot log in to ${upstream.target.origin} as ${username}: check Features.mTLS.MenderUsername and MenderPassword`,
      );
    });
    const reply = await managementCall(upstream, {
      method: 'GET',
      path,
      headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
    });
    if (reply.status === 404) throw new LinkError(`${what}: not found on the Mender server`);
    if (reply.status !== 200) throw new LinkError(`${what}: the Mender server answered ${reply.status} (${errorText(reply)})`);
    try {
      return JSON.parse(reply.body.toString('utf8'));
    } catch {
      throw new LinkError(`${what}: the Mender server answered something that is not JSON`);
    }
  };
  const artifactIds = [...ids.artifacts];
  for (const d of ids.deployments) {
    const body = (await get(DEPLOYMENT(d), `deployment ${d}`)) as { artifacts?: unknown };
    if (!Array.isArray(body.artifacts) || body.artifacts.length === 0 || !body.artifacts.every((a) => typeof a === 'string')) {
      throw new LinkError(`deployment ${d}: the Mender server lists no artifact for it`);
    }
    artifactIds.push(...(body.artifacts as string[]));
  }
  const targets: PrewarmTarget[] = [];
  for (const id of new Set(artifactIds)) {
    const body = (await get(DOWNLOAD(id), `artifact ${id}`)) as { uri?: unknown };
    if (typeof body.uri !== 'string') throw new LinkError(`artifact ${id}: the Mender server gave no download link`);
    targets.push({ label: id, url: new URL(body.uri) });
  }
  return targets;
}
