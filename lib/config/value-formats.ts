// The string formats of mender-gateway.conf, registered with ajv as custom formats (strict ajv
// refuses unknown formats, and ajv-formats has none of these). Each has the one-line message
// an operator sees; keep the validators free of backtracking regexes (ajv security notes).

import { isIPv4, isIPv6 } from 'node:net';
import { parseDurationNs } from './parse-duration';
import { isPrewarmWindow } from './prewarm-window';

export interface ValueFormat {
  validate(value: string): boolean;
  message: string;
}

function isHostname(host: string): boolean {
  if (host.length > 253) return false;
  const labels = host.split('.');
  if (labels.every((label) => /^[0-9]+$/.test(label))) return false; // numeric but not a valid IPv4
  return labels.every((label) => /^[A-Za-z0-9-]{1,63}$/.test(label) && !label.startsWith('-') && !label.endsWith('-'));
}

/** Go's net.Listen address: [host]:port, host empty (every interface), IPv4, [IPv6] or a name. */
export function isListenAddress(value: string): boolean {
  const colon = value.lastIndexOf(':');
  if (colon < 0) return false;
  const host = value.slice(0, colon);
  const port = value.slice(colon + 1);
  if (!/^[0-9]{1,5}$/.test(port) || Number(port) > 65535) return false;
  if (host === '') return true;
  if (host.startsWith('[') && host.endsWith(']')) return isIPv6(host.slice(1, -1));
  return isIPv4(host) || isHostname(host);
}

/** An absolute http(s) URL with a host; "" means unset (required-when-enabled is checked apart). */
export function isHttpUrl(value: string): boolean {
  if (value === '') return true;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
}

/** Standard base64 with padding, as Go's base64.StdEncoding decodes it; "" means generate one. */
export function isBase64(value: string): boolean {
  if (value === '') return true;
  return value.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(value);
}

export function isPositiveDuration(value: string): boolean {
  try {
    return parseDurationNs(value) > 0n;
  } catch {
    return false;
  }
}

export const VALUE_FORMATS: Record<string, ValueFormat> = {
  'prewarm-window': {
    validate: (v) => v === '' || isPrewarmWindow(v),
    message: 'must be HH:MM-HH:MM in local time ("01:00-05:00", "22:00-06:00")',
  },
  listen: { validate: isListenAddress, message: 'must be host:port (":443", "127.0.0.1:8080", "[::1]:8443")' },
  'http-url': { validate: isHttpUrl, message: 'must be an http:// or https:// URL with a host' },
  base64: { validate: isBase64, message: 'must be standard base64 (A-Z a-z 0-9 + /, = padding)' },
  'positive-duration': {
    validate: isPositiveDuration,
    message: 'must be a positive Go duration such as "90s", "30m" or "1h30m"',
  },
};
