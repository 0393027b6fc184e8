// The key/variable/type/default/meaning table of docs/configuration.md, generated from schema.json
// and the environment table, so the documentation cannot drift from what the loader does.

import schema from './schema.json';
import { ENV_OVERRIDES } from './env-overrides';

export interface KeyRow {
  path: string;
  env: string[];
  /** 'ours' for an extension of this gateway (its description starts with "(ours)"), else 'product'. */
  origin: 'product' | 'ours';
  /** A value as it is written in the JSON file (the environment takes it without JSON quotes). */
  example: string;
  type: string;
  default: unknown;
  description: string;
}

interface Node {
  type?: string | string[];
  default?: unknown;
  description?: string;
  format?: string;
  enum?: unknown[];
  properties?: Record<string, Node>;
}

const FORMAT_TYPES: Record<string, string> = {
  listen: 'host:port',
  'http-url': 'URL',
  base64: 'base64 string',
  'positive-duration': 'duration',
  'prewarm-window': 'HH:MM-HH:MM',
};

/** One example value per key, as written in the JSON file. */
const EXAMPLES: Record<string, string> = {
  'Features.ArtifactsProxy.Enabled': 'true',
  'Features.ArtifactsProxy.GatewayURL': '"https://gateway.example.com"',
  'Features.ArtifactsProxy.DomainWhitelist': '["s3.amazonaws.com", "storage.example.com"]',
  'Features.ArtifactsProxy.ArtifactsCache.Enabled': 'true',
  'Features.ArtifactsProxy.ArtifactsCache.Path': '"/data/mender-gateway-cache"',
  'Features.ArtifactsProxy.ArtifactsCache.SignatureSecret': '"c2VjcmV0LWtleS1vZi0zMi1ieXRlcy1hdC1sZWFzdA=="',
  'Features.ArtifactsProxy.ArtifactsCache.LinkExpireDuration': '"12h"',
  'Features.ArtifactsProxy.ArtifactsCache.MaxSize': '10737418240',
  'Features.ArtifactsProxy.ArtifactsCache.Prewarm': 'false',
  'Features.ArtifactsProxy.ArtifactsCache.PrewarmWindow': '"01:00-05:00"',
  'Features.ArtifactsProxy.ArtifactsCache.FillRateLimit': '1048576',
  'Features.ArtifactsProxy.ArtifactsCache.S3.Enabled': 'true',
  'Features.ArtifactsProxy.ArtifactsCache.S3.Endpoint': '"https://s3.eu-west-1.amazonaws.com"',
  'Features.ArtifactsProxy.ArtifactsCache.S3.Bucket': '"fleet-artifacts"',
  'Features.ArtifactsProxy.ArtifactsCache.S3.Region': '"eu-west-1"',
  'Features.ArtifactsProxy.ArtifactsCache.S3.AccessKeyID': '"AKIAIOSFODNN7EXAMPLE"',
  'Features.ArtifactsProxy.ArtifactsCache.S3.SecretAccessKey': '"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
  'Features.ArtifactsProxy.ArtifactsCache.S3.Prefix': '"gateways/site-a/"',
  'Features.mTLS.Enabled': 'true',
  'Features.mTLS.CACertificate': '"/etc/mender/ca.crt"',
  'Features.mTLS.BlacklistPath': '"/etc/mender/mtls-blacklist.txt"',
  'Features.mTLS.CRLPath': '"/etc/mender/ca.crl"',
  'Features.mTLS.MenderUsername': '"gateway@example.com"',
  'Features.mTLS.MenderPassword': '"…"',
  'Features.mTLS.EnableCache': 'false',
  'Features.mTLS.InsecureSkipClientExpireAfter': 'true',
  'Features.mTLS.CacheLifetime': '"15m"',
  'Features.mTLS.RequireAuthKeyMatchesCertificate': 'true',
  'Features.mTLS.IdentityAttribute': '"mac"',
  'Features.mTLS.IdentityCertificateField': '"SAN"',
  'Features.mTLS.AllowKeyReplacement': 'true',
  'Features.mTLS.AllowPlainHTTP': 'true',
  'Features.DeviceSystem.Enabled': 'true',
  'Features.DeviceSystem.SystemID': '"plant-7-line-2"',
  'Features.DeviceSystem.DefaultInventory': '[{"Name": "site", "Value": "plant-7"}]',
  'Features.ReportJournal.Enabled': 'false',
  'Features.ReportJournal.Path': '"/var/lib/mender-gateway/journal"',
  'Features.ReportJournal.MaxSize': '1073741824',
  'Features.ReportJournal.MaxAge': '"168h"',
  'Features.ReportJournal.MaxDeviceSize': '1048576',
  'HTTP.Enabled': 'true',
  'HTTP.Listen': '"127.0.0.1:8080"',
  'HTTPS.Enabled': 'true',
  'HTTPS.Listen': '":8443"',
  'HTTPS.MinimumTLSVersion': '"1.3"',
  'HTTPS.ServerCertificate': '"/etc/mender/server.crt"',
  'HTTPS.ServerKey': '"/etc/mender/server.key"',
  'UpstreamServer.URL': '"https://hosted.mender.io"',
  'UpstreamServer.CACertificate': '"/etc/mender/upstream-ca.pem"',
  'UpstreamServer.InsecureSkipVerify': 'true',
  'UpstreamServer.Timeout': '"90s"',
  'Metrics.Enabled': 'true',
  'Metrics.Listen': '"127.0.0.1:9102"',
  'Metrics.StatusPageAllowRemote': 'true',
  LogLevel: '"debug"',
  DebugLog: 'true',
  ShutdownTimeout: '"45s"',
  Workers: '2',
};

function typeOf(node: Node): string {
  if (node.enum) return node.enum.map((v) => JSON.stringify(v)).join(' \\| ');
  if (node.format) return FORMAT_TYPES[node.format] ?? node.format;
  if (node.type === 'array') return 'list';
  return Array.isArray(node.type) ? node.type.join(' \\| ') : (node.type ?? '');
}

/** Every leaf key of the schema (objects are walked, lists of objects are leaves), in schema order. */
export function configKeys(): KeyRow[] {
  const rows: KeyRow[] = [];
  const walk = (node: Node, path: string[]) => {
    for (const [name, child] of Object.entries(node.properties ?? {})) {
      const childPath = [...path, name];
      if (child.type === 'object' && child.properties) {
        walk(child, childPath);
        continue;
      }
      const joined = childPath.join('.');
      rows.push({
        path: joined,
        env: ENV_OVERRIDES.filter((r) => r.path.join('.') === joined).map((r) => r.env),
        origin: (child.description ?? '').startsWith('(ours)') ? 'ours' : 'product',
        example: EXAMPLES[joined] ?? '',
        type: typeOf(child),
        default: child.default,
        description: child.description ?? '',
      });
    }
  };
  walk(schema as Node, []);
  return rows;
}

export function renderConfigMarkdown(): string {
  const head = [
    '## How the configuration is read',
    '',
    "The gateway reads the commercial Mender Gateway's JSON file, `--config FILE` (default",
    '`/etc/mender/mender-gateway.conf`; a missing default file is fine when the environment configures',
    'the gateway, a missing file named by `--config` is an error). Every environment variable below',
    "overrides the file. Booleans in the environment parse like Go's `strconv.ParseBool`",
    "(`1 t T TRUE true True 0 f F FALSE false False`), durations like Go's `time.ParseDuration`",
    '(`90s`, `30m`, `1h30m`), lists are comma- or space-separated or a JSON array; an empty variable',
    'counts as unset. Keys match case-insensitively, as in the product. Unknown keys are logged as',
    'warnings and ignored; every invalid value is reported at start, one line each, and the gateway',
    'exits with status 2. Certificate and key files of enabled features are read and checked at start.',
    '`HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` (and lowercase) set an outbound proxy for the upstream',
    'connection; they are environment-only, as in the product.',
    '',
    '## Every key',
    '',
    "From: *product* keys and variables are the commercial gateway's; *ours* are extensions of this",
    'gateway (their meaning starts with *(ours)*). Defaults the product does not document are our',
    'choices; the meaning says why where it matters. Examples are written as in the JSON file; in the',
    'environment the same value goes without JSON quotes (`HTTPS_LISTEN=:8443`).',
    '',
    '| Key | Environment variable | From | Type | Default | Example | Meaning |',
    '|---|---|---|---|---|---|---|',
  ];
  const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const body = configKeys().map((row) => {
    const env = row.env.length ? row.env.map((e) => `\`${e}\``).join(', ') : '— (file only)';
    const def = row.default === undefined ? '—' : `\`${JSON.stringify(row.default)}\``;
    return `| \`${row.path}\` | ${env} | ${row.origin} | ${row.type} | ${def} | \`${cell(row.example)}\` | ${cell(row.description)} |`;
  });
  return [...head, ...body, ''].join('\n');
}
