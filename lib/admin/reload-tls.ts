import { createSecureContext } from 'node:tls';
import type https from 'node:https';
import type { GatewayConfig } from '../config/types';
import type { Logger } from '../observe/log';
import { tlsOptionsFor } from '../server/listeners';

// SIGHUP: the HTTPS listeners take the certificate and key from disk again. The new
// pair is tried first (createSecureContext fails on a bad PEM or a key that does not match the
// certificate); if it fails the listeners keep the old one and the log says why. Connections
// already open keep the context they were made with: nothing is dropped.

/** `servers`: each HTTPS listener with the options it was made with (mTLS CA included). */
export function reloadServerCertificate(
  servers: Map<https.Server, https.ServerOptions>,
  settings: GatewayConfig['HTTPS'],
  log: Logger,
): boolean {
  if (servers.size === 0) return true;
  let fresh: https.ServerOptions;
  try {
    // setSecureContext replaces the whole context: everything but certificate and key stays.
    const { cert, key } = tlsOptionsFor(settings);
    fresh = { cert, key };
    for (const options of servers.values()) createSecureContext({ ...options, ...fresh });
  } catch (err) {
    log.error('reload: server certificate not replaced, keeping the one in use', {
      certificate: settings.ServerCertificate,
      key: settings.ServerKey,
      reason: (err as Error).message,
    });
    return false;
  }
  for (const [server, options] of servers) {
    Object.assign(options, fresh);
    server.setSecureContext(options);
  }
  log.info('reload: server certificate replaced', { certificate: settings.ServerCertificate });
  return true;
}
