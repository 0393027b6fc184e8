// The effective configuration for a debug log line, with every secret replaced: operators
// need to see what the gateway runs with, never the password, the link-signing key or the
// bucket's credentials (the keys are listed in secret-keys.ts).

import { SECRET_CONFIG_KEYS } from './secret-keys';
import type { GatewayConfig } from './types';

export function redactedConfig(config: Readonly<GatewayConfig>): unknown {
  const copy = JSON.parse(JSON.stringify(config)) as Record<string, unknown>;
  for (const path of SECRET_CONFIG_KEYS) {
    let node: unknown = copy;
    for (const segment of path.slice(0, -1)) node = (node as Record<string, unknown> | undefined)?.[segment];
    const last = path[path.length - 1];
    if (typeof node !== 'object' || node === null || !(last in node)) continue;
    const holder = node as Record<string, unknown>;
    holder[last] = holder[last] === '' ? '' : '[redacted]';
  }
  return copy;
}
