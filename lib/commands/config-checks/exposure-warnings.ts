import { statusPageExposure } from '../../admin/status-access';
import type { GatewayConfig } from '../../config/types';
import { plainHttpExposure } from '../../mtls/plain-http-guard';

// What a start would warn about because it opens something private to the LAN: the same
// lines the gateway logs at start, from the same functions.

export function exposureWarnings(config: Readonly<GatewayConfig>): string[] {
  return [statusPageExposure(config.Metrics), plainHttpExposure(config)].filter((w): w is string => w !== undefined);
}
