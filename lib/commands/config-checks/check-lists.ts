// check-config: the lists a start reads only later (the first download, the first mTLS
// handshake): DomainWhitelist entries, the serial blocklist and the CRL. Each is parsed by
// the module that uses it, so check-config and the gateway cannot disagree.

import { createDomainAllowlist } from '../../artifacts/domain-allowlist';
import { crlWarning } from '../../observe/certificate-expiry';
import { parseCrls } from '../../mtls/crl';
import { parseCertificates } from '../../mtls/client-identity';
import { parseBlocklist } from '../../mtls/serial-blocklist';
import { readFileBytes } from '../../server/watched-file';
import type { GatewayConfig } from '../../config/types';

export interface ListsReport {
  /** "KEY: problem", one per problem. */
  problems: string[];
  /** For the summary: what was read. */
  notes: string[];
  /** "KEY: warning", as a start would log it (a CRL past its nextUpdate). */
  warnings: string[];
}

function checkWhitelist(entries: readonly string[], report: ListsReport): void {
  for (const [index, entry] of entries.entries()) {
    try {
      createDomainAllowlist([entry]);
    } catch (err) {
      // The allowlist's message starts "DomainWhitelist: "; the key path says which entry.
      report.problems.push(
        `Features.ArtifactsProxy.DomainWhitelist[${index}]: ${(err as Error).message.replace(/^DomainWhitelist: /, '')}`,
      );
    }
  }
}

function checkBlocklist(path: string, report: ListsReport): void {
  const key = 'Features.mTLS.BlacklistPath';
  const read = readFileBytes(path);
  if (!read.ok) return void report.problems.push(`${key}: cannot read ${path}: ${read.error}`);
  const parsed = parseBlocklist(read.value.toString('utf8'));
  if (!parsed.ok) return void report.problems.push(`${key}: ${path}: ${parsed.error}`);
  report.notes.push(`blocklist ${parsed.serials.size} serials`);
}

function checkCrl(config: Readonly<GatewayConfig>, report: ListsReport): void {
  const { CRLPath: path, CACertificate: caPath } = config.Features.mTLS;
  const key = 'Features.mTLS.CRLPath';
  const read = readFileBytes(path);
  if (!read.ok) return void report.problems.push(`${key}: cannot read ${path}: ${read.error}`);
  const ca = readFileBytes(caPath);
  let trusted: ReturnType<typeof parseCertificates> = [];
  try {
    if (ca.ok) trusted = parseCertificates(ca.value.toString('utf8'));
  } catch {
    // A broken CA file is reported by checkConfigFiles under its own key.
  }
  if (trusted.length === 0) return; // the signature cannot be checked without a CA: the CA line says why
  const parsed = parseCrls(read.value, trusted);
  if (!parsed.ok) return void report.problems.push(`${key}: ${path}: ${parsed.error}`);
  const revoked = parsed.crls.reduce((n, c) => n + c.serials.size, 0);
  // The earliest nextUpdate, as the gateway takes it (lib/mtls/revocation-list.ts).
  const updates = parsed.crls.flatMap((c) => (c.nextUpdate === null ? [] : [c.nextUpdate.getTime()]));
  const stale = crlWarning(path, updates.length > 0 ? Math.min(...updates) : null, Date.now());
  if (stale) report.warnings.push(`${key}: ${stale.line}`);
  report.notes.push(`CRL ${parsed.crls.length} list(s), ${revoked} revoked${stale ? ', PAST its next update' : ''}`);
}

export function checkLists(config: Readonly<GatewayConfig>): ListsReport {
  const report: ListsReport = { problems: [], notes: [], warnings: [] };
  const proxy = config.Features.ArtifactsProxy;
  if (proxy.Enabled) checkWhitelist(proxy.DomainWhitelist, report);
  const mtls = config.Features.mTLS;
  if (mtls.Enabled && mtls.BlacklistPath !== '') checkBlocklist(mtls.BlacklistPath, report);
  if (mtls.Enabled && mtls.CRLPath !== '') checkCrl(config, report);
  return report;
}
