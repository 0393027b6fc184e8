import { join } from 'node:path';
import type { GatewayConfig } from './types';

// Where the report journal lives, derived once here (lib/gateway.ts hands it to the journal as
// part of its slice): ReportJournal.Path; else beside the artifact cache, whose Path names the
// gateway's writable state on the product's installs; else /var/lib/mender-gateway/journal.

export const DEFAULT_JOURNAL_DIR = '/var/lib/mender-gateway/journal';

export function journalDir(config: Readonly<GatewayConfig>): string {
  const settings = config.Features.ReportJournal;
  if (settings.Path) return settings.Path;
  const cache = config.Features.ArtifactsProxy.ArtifactsCache;
  return config.Features.ArtifactsProxy.Enabled && cache.Enabled ? join(cache.Path, 'journal') : DEFAULT_JOURNAL_DIR;
}
