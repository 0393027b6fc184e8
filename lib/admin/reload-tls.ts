import { createSecureContext } from 'node:tls';
import type https from 'node:https';
import type { GatewayConfig } from '../config/types';
import { certificateExpiry } from '../observe/certificate-expiry';
import type { Logger } from '../observe/log';
import { tlsOptionsFor } from '../server/listeners';

// SIGHUP: the HTTPS listeners take the certificate and key from disk again, and the mTLS CA
// when it changed. The new context is tried first (createSecureContext fails on a bad PEM or a
// key that does not match the certificate); if the certificate fails, the listeners keep it,
// the log says why, and a new CA still reaches them with the certificate in use: a device the
// new CA no longer signs must not keep getting in because an unrelated file was broken.
// Connections already open keep the context they were made with (mTLS re-verifies them).

export interface ReloadedTls {
  certificate: boolean;
  /** The CA given is in the listeners' secure context now. */
  ca: boolean;
}

/** `servers`: each HTTPS listener with the options it was made with (mTLS CA included). */
export function reloadServerCertificate(
  servers: Map<https.Server, https.ServerOptions>,
  settings: GatewayConfig['HTTPS'],
  log: Logger,
  ca?: string,
): ReloadedTls {
  if (servers.size === 0) return { certificate: true, ca: false };
  // setSecureContext replaces the whole context: everything but these stays.
  let fresh: https.ServerOptions = ca === undefined ? {} : { ca };
  let certificate = true;
  try {
    const { cert, key } = tlsOptionsFor(settings);
    for (const options of servers.values()) createSecureContext({ ...options, ...fresh, cert, key });
    fresh = { ...fresh, cert, key };
  } catch (err) {
    certificate = false;
    log.error('reload: server certificate not replaced, keeping the one in use', {
      certificate: settings.ServerCertificate,
      key: settings.ServerKey,
      reason: (err as Error).message,
    });
  }
  if (!certificate && ca !== undefined) {
    try {
      for (const options of servers.values()) createSecureContext({ ...options, ca });
    } catch (err) {
      log.error('reload: mTLS CA not given to TLS handshakes: the gateway verifies every chain itself', { reason: (err as Error).message });
      fresh = {};
    }
  }
  if (fresh.cert === undefined && fresh.ca === undefined) return { certificate: false, ca: false };
  for (const [server, options] of servers) {
    Object.assign(options, fresh);
    server.setSecureContext(options);
  }
  if (certificate) {
    log.info('reload: server certificate replaced', {
      certificate: settings.ServerCertificate,
      mtls_ca: ca === undefined ? undefined : 'replaced',
    });
    certificateExpiry.certificate('server', settings.ServerCertificate, fresh.cert as Buffer, log, 'leaf');
  } else {
    log.info('reload: mTLS CA replaced in TLS handshakes, with the server certificate in use');
  }
  return { certificate, ca: fresh.ca !== undefined };
}
