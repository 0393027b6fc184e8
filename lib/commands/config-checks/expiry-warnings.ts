import { readFileSync } from 'node:fs';
import type { GatewayConfig } from '../../config/types';
import { certificateWarning, notAfterOf, type CertificateName } from '../../observe/certificate-expiry';

// What a start would warn about the certificates' dates (lib/observe/certificate-expiry.ts):
// one line each, from the same functions, naming the key. The CRL's nextUpdate is checked
// with the CRL itself (check-lists.ts). A file that cannot be read is an error of its own
// (config/check-files.ts), not a warning here.

export function expiryWarnings(config: Readonly<GatewayConfig>, now = Date.now()): string[] {
  const files: [string, CertificateName, string, 'leaf' | 'earliest'][] = [];
  if (config.HTTPS.Enabled) files.push(['HTTPS.ServerCertificate', 'server', config.HTTPS.ServerCertificate, 'leaf']);
  if (config.Features.mTLS.Enabled)
    files.push(['Features.mTLS.CACertificate', 'client_ca', config.Features.mTLS.CACertificate, 'earliest']);
  if (config.UpstreamServer.CACertificate !== '') {
    files.push(['UpstreamServer.CACertificate', 'upstream_ca', config.UpstreamServer.CACertificate, 'earliest']);
  }
  const out: string[] = [];
  for (const [key, name, path, which] of files) {
    let pem: string;
    try {
      pem = readFileSync(path, 'utf8');
    } catch {
      continue;
    }
    const notAfter = notAfterOf(pem, which);
    const warning = notAfter === undefined ? undefined : certificateWarning(name, path, notAfter, now);
    if (warning) out.push(`${key}: ${warning.line}`);
  }
  return out;
}
