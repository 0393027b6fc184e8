// Rules across keys that JSON Schema would only express as unreadable if/then blocks:
// what an enabled feature needs, and combinations that cannot work. Runs on the config with
// defaults applied; errors and warnings are one line each.

import type { GatewayConfig } from './types';

export interface KeyFindings {
  errors: string[];
  warnings: string[];
}

type Rule = [enabled: boolean, key: string, value: unknown, why: string];

export function checkRequiredKeys(config: GatewayConfig): KeyFindings {
  const errors: string[] = [];
  const warnings: string[] = [];
  const { Features: f, HTTP, HTTPS, UpstreamServer } = config;
  const ap = f?.ArtifactsProxy;
  const mtls = f?.mTLS;
  const system = f?.DeviceSystem;

  const required: Rule[] = [
    [true, 'UpstreamServer.URL', UpstreamServer?.URL, 'the Mender server to proxy to'],
    [HTTPS?.Enabled === true, 'HTTPS.ServerCertificate', HTTPS?.ServerCertificate, 'required when HTTPS.Enabled is true'],
    [HTTPS?.Enabled === true, 'HTTPS.ServerKey', HTTPS?.ServerKey, 'required when HTTPS.Enabled is true'],
    [ap?.Enabled === true, 'Features.ArtifactsProxy.GatewayURL', ap?.GatewayURL, 'required when ArtifactsProxy.Enabled is true'],
    [mtls?.Enabled === true, 'Features.mTLS.CACertificate', mtls?.CACertificate, 'required when mTLS.Enabled is true'],
    [mtls?.Enabled === true, 'Features.mTLS.MenderUsername', mtls?.MenderUsername, 'required when mTLS.Enabled is true'],
    [mtls?.Enabled === true, 'Features.mTLS.MenderPassword', mtls?.MenderPassword, 'required when mTLS.Enabled is true'],
    [system?.Enabled === true, 'Features.DeviceSystem.SystemID', system?.SystemID, 'required when DeviceSystem.Enabled is true'],
  ];
  for (const [enabled, key, value, why] of required) {
    if (enabled && value === '') errors.push(`${key}: ${key === 'UpstreamServer.URL' ? `required (${why})` : why}, got nothing`);
  }

  if (HTTP?.Enabled === false && HTTPS?.Enabled === false) {
    errors.push('HTTP.Enabled, HTTPS.Enabled: at least one listener must be enabled, got both false');
  }
  // Client certificates only exist on TLS connections; silently serving mTLS-less would admit anyone.
  if (mtls?.Enabled === true && HTTPS?.Enabled === false) {
    errors.push('Features.mTLS.Enabled: requires HTTPS.Enabled (client certificates need TLS), got HTTPS.Enabled false');
  }
  if (ap?.ArtifactsCache?.Enabled === true && ap.Enabled === false) {
    warnings.push('Features.ArtifactsProxy.ArtifactsCache.Enabled: has no effect while Features.ArtifactsProxy.Enabled is false');
  }
  if (mtls?.Enabled === true && mtls.InsecureSkipClientExpireAfter === true) {
    warnings.push('Features.mTLS.InsecureSkipClientExpireAfter: expired client certificates are accepted; not for production');
  }
  if (UpstreamServer?.InsecureSkipVerify === true) {
    warnings.push("UpstreamServer.InsecureSkipVerify: the upstream server's certificate is not verified; not for production");
  }
  return { errors, warnings };
}
