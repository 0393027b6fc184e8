import type { IncomingMessage } from 'node:http';

// Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection and are not forwarded.
// Upgrade and Connection stay on upgrade requests: they are the upgrade.
const HOP_BY_HOP = ['keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer'];

// Headers a device could use to lie about where it is; the gateway alone sets them.
const FORWARDED = ['forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip'];

/**
 * Prepare a device request's headers for upstream, in place and before the forwarder copies
 * them: drop hop-by-hop headers and anything forwarded-looking the device sent (never
 * trusted), then state the device's address, scheme and the host it asked for.
 */
export function setForwardedHeaders(req: IncomingMessage, clientAddress: string, protocol: 'http' | 'https'): void {
  const headers = req.headers;
  for (const name of FORWARDED) delete headers[name];
  for (const name of HOP_BY_HOP) delete headers[name];
  if (!isUpgrade(req)) delete headers.connection;
  headers['x-forwarded-for'] = clientAddress;
  headers['x-forwarded-proto'] = protocol;
  if (headers.host) headers['x-forwarded-host'] = headers.host;
}

export function isUpgrade(req: IncomingMessage): boolean {
  return typeof req.headers.upgrade === 'string' && /\bupgrade\b/i.test(String(req.headers.connection ?? ''));
}
