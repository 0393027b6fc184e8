// The effective configuration for a debug log line, with every secret replaced: operators
// need to see what the gateway runs with, never the password or the link-signing key.

import type { GatewayConfig } from './types';

export function redactedConfig(config: Readonly<GatewayConfig>): unknown {
  const copy = JSON.parse(JSON.stringify(config)) as GatewayConfig;
  const mask = (value: string) => (value === '' ? '' : '[redacted]');
  copy.Features.mTLS.MenderPassword = mask(copy.Features.mTLS.MenderPassword);
  copy.Features.ArtifactsProxy.ArtifactsCache.SignatureSecret = mask(copy.Features.ArtifactsProxy.ArtifactsCache.SignatureSecret);
  const s3 = copy.Features.ArtifactsProxy.ArtifactsCache.S3;
  if (s3) {
    s3.AccessKeyID = mask(s3.AccessKeyID);
    s3.SecretAccessKey = mask(s3.SecretAccessKey);
  }
  return copy;
}
