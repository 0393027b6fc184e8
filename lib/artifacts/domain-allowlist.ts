import { domainToASCII } from 'node:url';
import { isIP } from 'node:net';

// Features.ArtifactsProxy.DomainWhitelist: which storage hosts the gateway proxies from.
//
// The rule: an origin URL is allowed when it is http(s), carries no userinfo, and its host
// is a listed domain or a subdomain of one (label boundary: `s3.amazonaws.com` allows
// `bucket.s3.amazonaws.com`, never `evil-s3.amazonaws.com` nor
// `s3.amazonaws.com.attacker.net`). IP addresses match only exactly. Ports are not part of
// the rule. Both sides are compared in their ASCII form: lowercase, IDN as punycode (so a
// look-alike Unicode host never matches a Latin entry), no trailing dot. An entry may be
// written as a bare host, `.suffix`, `*.suffix` or a URL; only its host counts.

export interface DomainAllowlist {
  /** The normalized entries, for logs. */
  readonly domains: readonly string[];
  allows(url: URL): boolean;
}

export function createDomainAllowlist(entries: readonly string[]): DomainAllowlist {
  const domains = entries.map(normalizeEntry);
  return {
    domains,
    allows(url) {
      if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
      if (url.username !== '' || url.password !== '') return false;
      const host = normalizeHost(url.hostname);
      if (host === '') return false;
      return domains.some((domain) => hostMatches(host, domain));
    },
  };
}

export function hostMatches(host: string, domain: string): boolean {
  if (host === domain) return true;
  if (isIP(unbracket(host)) || isIP(unbracket(domain))) return false;
  return host.endsWith('.' + domain);
}

function normalizeEntry(entry: string): string {
  let text = entry.trim();
  if (text.includes('://')) {
    try {
      text = new URL(text).hostname;
    } catch {
      throw new Error(`DomainWhitelist: ${JSON.stringify(entry)} is not a host name`);
    }
  }
  text = text.replace(/^\*?\./, '');
  // A bare "host:port" entry: the port is not part of the rule.
  if (!text.startsWith('[') && /^[^:]+:[0-9]+$/.test(text)) text = text.slice(0, text.lastIndexOf(':'));
  // domainToASCII quietly cuts at '/', so refuse URL-ish characters first.
  const host = /[\s/@?#\\]/.test(text) ? '' : normalizeHost(isIP(text) === 6 ? `[${text}]` : text);
  if (host === '') throw new Error(`DomainWhitelist: ${JSON.stringify(entry)} is not a host name`);
  return host;
}

function normalizeHost(host: string): string {
  const trimmed = host.replace(/\.$/, '');
  if (trimmed.startsWith('[')) return trimmed.toLowerCase();
  return domainToASCII(trimmed); // lowercases; '' when not a valid domain
}

function unbracket(host: string): string {
  return host.startsWith('[') ? host.slice(1, -1) : host;
}
