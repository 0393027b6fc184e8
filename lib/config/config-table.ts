// The key/variable/type/default/meaning table of the README, generated from schema.json and the
// environment table, so the documentation cannot drift from what the loader does.

import schema from './schema.json';
import { ENV_OVERRIDES } from './env-overrides';

export interface KeyRow {
  path: string;
  env: string[];
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
    '## Configuration',
    '',
    'The gateway reads the commercial Mender Gateway\'s JSON file, `--config FILE` (default',
    '`/etc/mender/mender-gateway.conf`; a missing default file is fine when the environment configures',
    'the gateway, a missing file named by `--config` is an error). Every environment variable below',
    'overrides the file. Booleans in the environment parse like Go\'s `strconv.ParseBool`',
    '(`1 t T TRUE true True 0 f F FALSE false False`), durations like Go\'s `time.ParseDuration`',
    '(`90s`, `30m`, `1h30m`), lists are comma- or space-separated or a JSON array; an empty variable',
    'counts as unset. Keys match case-insensitively, as in the product. Unknown keys are logged as',
    'warnings and ignored; every invalid value is reported at start, one line each, and the gateway',
    'exits with status 2. Certificate and key files of enabled features are read and checked at start.',
    '`HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` (and lowercase) set an outbound proxy for the upstream',
    'connection; they are environment-only, as in the product.',
    '',
    'Keys marked *(ours)* are extensions of this gateway. Defaults the product does not document are',
    'our choices; the description says why where it matters.',
    '',
    '| Key | Environment variable | Type | Default | Meaning |',
    '|---|---|---|---|---|',
  ];
  const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const body = configKeys().map((row) => {
    const env = row.env.length ? row.env.map((e) => `\`${e}\``).join(', ') : '— (file only)';
    const def = row.default === undefined ? '—' : `\`${JSON.stringify(row.default)}\``;
    return `| \`${row.path}\` | ${env} | ${row.type} | ${def} | ${cell(row.description)} |`;
  });
  return [...head, ...body, ''].join('\n');
}
