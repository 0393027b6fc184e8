// The environment overlay: one row per variable, the product's names (CL 2.0.0 list, 2.2.0
// metrics) plus ours. A variable that is set, even to the file's value, wins over the file.
// HTTP_PROXY/HTTPS_PROXY/NO_PROXY are not configuration keys: the upstream module reads them.

import { parseBool } from './parse-bool';
import { parseList } from './parse-list';

type Kind = 'bool' | 'string' | 'list' | 'integer';

export interface EnvOverride {
  env: string;
  path: readonly string[];
  kind: Kind;
  /** Extension of the open gateway, not a product variable. */
  ours?: true;
  /** Another accepted name for a key that already has a row; the primary name wins. */
  aliasOf?: string;
}

const AP = ['Features', 'ArtifactsProxy'];
const CACHE = [...AP, 'ArtifactsCache'];
const S3 = [...CACHE, 'S3'];
const MTLS = ['Features', 'mTLS'];
const SYSTEM = ['Features', 'DeviceSystem'];
const JOURNAL = ['Features', 'ReportJournal'];

export const ENV_OVERRIDES: readonly EnvOverride[] = [
  { env: 'ARTIFACTS_PROXY_ENABLED', path: [...AP, 'Enabled'], kind: 'bool' },
  { env: 'ARTIFACTS_PROXY_GATEWAY_URL', path: [...AP, 'GatewayURL'], kind: 'string' },
  { env: 'ARTIFACTS_PROXY_DOMAIN_WHITELIST', path: [...AP, 'DomainWhitelist'], kind: 'list' },
  { env: 'ARTIFACTS_PROXY_CACHE_ENABLED', path: [...CACHE, 'Enabled'], kind: 'bool' },
  { env: 'ARTIFACTS_PROXY_CACHE_PATH', path: [...CACHE, 'Path'], kind: 'string' },
  { env: 'ARTIFACTS_PROXY_CACHE_SECRET', path: [...CACHE, 'SignatureSecret'], kind: 'string' },
  { env: 'ARTIFACTS_PROXY_CACHE_LINK_EXPIRE_DURATION', path: [...CACHE, 'LinkExpireDuration'], kind: 'string' },
  { env: 'ARTIFACTS_PROXY_CACHE_MAX_SIZE', path: [...CACHE, 'MaxSize'], kind: 'integer', ours: true },
  { env: 'ARTIFACTS_PROXY_CACHE_PREWARM', path: [...CACHE, 'Prewarm'], kind: 'bool', ours: true },
  { env: 'ARTIFACTS_PROXY_CACHE_PREWARM_WINDOW', path: [...CACHE, 'PrewarmWindow'], kind: 'string', ours: true },
  { env: 'ARTIFACTS_PROXY_CACHE_FILL_RATE_LIMIT', path: [...CACHE, 'FillRateLimit'], kind: 'integer', ours: true },
  { env: 'ARTIFACTS_PROXY_CACHE_S3_ENABLED', path: [...S3, 'Enabled'], kind: 'bool', ours: true },
  { env: 'ARTIFACTS_PROXY_CACHE_S3_ENDPOINT', path: [...S3, 'Endpoint'], kind: 'string', ours: true },
  { env: 'ARTIFACTS_PROXY_CACHE_S3_BUCKET', path: [...S3, 'Bucket'], kind: 'string', ours: true },
  { env: 'ARTIFACTS_PROXY_CACHE_S3_REGION', path: [...S3, 'Region'], kind: 'string', ours: true },
  { env: 'ARTIFACTS_PROXY_CACHE_S3_ACCESS_KEY_ID', path: [...S3, 'AccessKeyID'], kind: 'string', ours: true },
  { env: 'ARTIFACTS_PROXY_CACHE_S3_SECRET_ACCESS_KEY', path: [...S3, 'SecretAccessKey'], kind: 'string', ours: true },
  { env: 'ARTIFACTS_PROXY_CACHE_S3_PREFIX', path: [...S3, 'Prefix'], kind: 'string', ours: true },
  { env: 'MTLS_ENABLED', path: [...MTLS, 'Enabled'], kind: 'bool' },
  { env: 'MTLS_CA_CERTIFICATE', path: [...MTLS, 'CACertificate'], kind: 'string' },
  { env: 'MTLS_BLACKLIST_PATH', path: [...MTLS, 'BlacklistPath'], kind: 'string' },
  { env: 'MTLS_CRL_PATH', path: [...MTLS, 'CRLPath'], kind: 'string', ours: true },
  { env: 'MTLS_MENDER_USERNAME', path: [...MTLS, 'MenderUsername'], kind: 'string' },
  { env: 'MTLS_MENDER_PASSWORD', path: [...MTLS, 'MenderPassword'], kind: 'string' },
  { env: 'MTLS_ENABLE_CACHE', path: [...MTLS, 'EnableCache'], kind: 'bool' },
  { env: 'MTLS_INSECURE_SKIP_CLIENT_EXPIRE_AFTER', path: [...MTLS, 'InsecureSkipClientExpireAfter'], kind: 'bool' },
  { env: 'MTLS_CACHE_LIFETIME', path: [...MTLS, 'CacheLifetime'], kind: 'string', ours: true },
  { env: 'MTLS_REQUIRE_AUTH_KEY_MATCHES_CERTIFICATE', path: [...MTLS, 'RequireAuthKeyMatchesCertificate'], kind: 'bool', ours: true },
  { env: 'MTLS_IDENTITY_ATTRIBUTE', path: [...MTLS, 'IdentityAttribute'], kind: 'string', ours: true },
  { env: 'MTLS_IDENTITY_CERTIFICATE_FIELD', path: [...MTLS, 'IdentityCertificateField'], kind: 'string', ours: true },
  { env: 'MTLS_ALLOW_KEY_REPLACEMENT', path: [...MTLS, 'AllowKeyReplacement'], kind: 'bool', ours: true },
  { env: 'MTLS_ALLOW_PLAIN_HTTP', path: [...MTLS, 'AllowPlainHTTP'], kind: 'bool', ours: true },
  { env: 'DEVICE_SYSTEM_ENABLED', path: [...SYSTEM, 'Enabled'], kind: 'bool' },
  { env: 'DEVICE_SYSTEM_ID', path: [...SYSTEM, 'SystemID'], kind: 'string' },
  { env: 'REPORT_JOURNAL_ENABLED', path: [...JOURNAL, 'Enabled'], kind: 'bool', ours: true },
  { env: 'REPORT_JOURNAL_PATH', path: [...JOURNAL, 'Path'], kind: 'string', ours: true },
  { env: 'REPORT_JOURNAL_MAX_SIZE', path: [...JOURNAL, 'MaxSize'], kind: 'integer', ours: true },
  { env: 'REPORT_JOURNAL_MAX_AGE', path: [...JOURNAL, 'MaxAge'], kind: 'string', ours: true },
  { env: 'REPORT_JOURNAL_MAX_DEVICE_SIZE', path: [...JOURNAL, 'MaxDeviceSize'], kind: 'integer', ours: true },
  { env: 'HTTP_ENABLED', path: ['HTTP', 'Enabled'], kind: 'bool' },
  { env: 'HTTP_LISTEN', path: ['HTTP', 'Listen'], kind: 'string' },
  { env: 'HTTPS_ENABLED', path: ['HTTPS', 'Enabled'], kind: 'bool' },
  { env: 'HTTPS_LISTEN', path: ['HTTPS', 'Listen'], kind: 'string' },
  { env: 'HTTPS_MINIMUM_TLS_VERSION', path: ['HTTPS', 'MinimumTLSVersion'], kind: 'string' },
  { env: 'HTTPS_SERVER_CERTIFICATE', path: ['HTTPS', 'ServerCertificate'], kind: 'string' },
  { env: 'HTTPS_SERVER_KEY', path: ['HTTPS', 'ServerKey'], kind: 'string' },
  { env: 'UPSTREAM_SERVER_URL', path: ['UpstreamServer', 'URL'], kind: 'string' },
  // DOC-CONF names it UPSTREAM_SERVER; the changelog and every runnable example use _URL.
  { env: 'UPSTREAM_SERVER', path: ['UpstreamServer', 'URL'], kind: 'string', aliasOf: 'UPSTREAM_SERVER_URL' },
  { env: 'UPSTREAM_SERVER_CA_CERTIFICATE', path: ['UpstreamServer', 'CACertificate'], kind: 'string' },
  { env: 'UPSTREAM_SERVER_INSECURE_SKIP_VERIFY', path: ['UpstreamServer', 'InsecureSkipVerify'], kind: 'bool' },
  { env: 'UPSTREAM_SERVER_TIMEOUT', path: ['UpstreamServer', 'Timeout'], kind: 'string', ours: true },
  { env: 'METRICS_ENABLED', path: ['Metrics', 'Enabled'], kind: 'bool' },
  { env: 'METRICS_LISTEN', path: ['Metrics', 'Listen'], kind: 'string' },
  { env: 'METRICS_STATUS_PAGE_ALLOW_REMOTE', path: ['Metrics', 'StatusPageAllowRemote'], kind: 'bool', ours: true },
  { env: 'SHUTDOWN_TIMEOUT', path: ['ShutdownTimeout'], kind: 'string', ours: true },
  { env: 'LOG_LEVEL', path: ['LogLevel'], kind: 'string', ours: true },
  { env: 'WORKERS', path: ['Workers'], kind: 'integer', ours: true },
];

export interface EnvOverlayResult {
  /** Variables applied, in table order. */
  applied: string[];
  /** JSON path ("HTTPS.Listen") → the variable that set it, for error messages. */
  source: Map<string, string>;
  errors: string[];
  warnings: string[];
}

function parseValue(kind: Kind, text: string): unknown {
  switch (kind) {
    case 'bool':
      return parseBool(text);
    case 'list':
      return parseList(text);
    case 'integer':
      if (!/^[0-9]+$/.test(text)) throw new Error(`must be a non-negative integer, got ${JSON.stringify(text)}`);
      return Number(text);
    case 'string':
      return text;
  }
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): boolean {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (next === undefined) node[key] = {};
    else if (typeof next !== 'object' || next === null || Array.isArray(next)) return false; // schema reports it
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]] = value;
  return true;
}

/**
 * Overlay the environment onto `target` (a private object, mutated). Empty variables count as
 * unset: compose files and Kubernetes manifests often carry `NAME=` placeholders.
 */
export function applyEnvOverrides(target: Record<string, unknown>, env: NodeJS.ProcessEnv): EnvOverlayResult {
  const result: EnvOverlayResult = { applied: [], source: new Map(), errors: [], warnings: [] };
  for (const row of ENV_OVERRIDES) {
    const text = env[row.env];
    if (text === undefined || text === '') continue;
    if (row.aliasOf !== undefined) {
      const primary = env[row.aliasOf];
      if (primary !== undefined && primary !== '') {
        if (primary !== text) result.warnings.push(`${row.env} ignored: ${row.aliasOf} is set and wins`);
        continue;
      }
    }
    let value: unknown;
    try {
      value = parseValue(row.kind, text);
    } catch (err) {
      result.errors.push(`${row.env}: ${(err as Error).message}`);
      continue;
    }
    if (setPath(target, row.path, value)) {
      result.applied.push(row.env);
      result.source.set(row.path.join('.'), row.env);
    }
  }
  return result;
}
