import { createSecureContext } from 'node:tls';
import type https from 'node:https';
import type { GatewayConfig } from '../config/types';
import type { Logger } from '../observe/log';
import { tlsOptionsFor } from '../server/listeners';

// SIGHUP (issue 7): the HTTPS listeners take the certificate and key from disk again. The new
// pair is tried first (createSecureContext fails on a bad PEM or a key that does not match the
// certificate); if it fails the listeners keep the old one and the log says why. Connections
// already open keep the context they were made with: nothing is dropped.

export function reloadServerCertificate(
  servers: readonly https.Server[],
  settings: GatewayConfig['HTTPS'],
  extra: https.ServerOptions,
  log: Logger,
): boolean {
  if (servers.length === 0) return true;
  let options: https.ServerOptions;
  try {
    options = { ...tlsOptionsFor(settings), ...extra };
    createSecureContext(options);
  } catch (err) {
    log.error('reload: server certificate not replaced, keeping the one in use', {
      certificate: settings.ServerCertificate,
      key: settings.ServerKey,
      reason: (err as Error).message,
    });
    return false;
  }
  for (const server of servers) server.setSecureContext(options);
  log.info('reload: server certificate replaced', { certificate: settings.ServerCertificate });
  return true;
}
