import { constants as cryptoConstants } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { DEFAULT_CIPHERS, type SecureVersion } from 'node:tls';
import type { GatewayConfig } from '../config/types';
import { parseListen } from './listen-address';

export type Protocol = 'http' | 'https';
export type DeviceServer = http.Server | https.Server;

const TLS_VERSIONS: Record<GatewayConfig['HTTPS']['MinimumTLSVersion'], SecureVersion> = {
  '1.0': 'TLSv1',
  '1.1': 'TLSv1.1',
  '1.2': 'TLSv1.2',
  '1.3': 'TLSv1.3',
};

// Devices poll every few seconds on one connection; keep it open a little longer than
// Node's 5 s so a device's next poll usually reuses it.
const KEEP_ALIVE_MS = 15_000;

/** How long a device may take over each stage of a connection (docs/proxy.md, "Timeouts"). */
export interface DeviceTimeouts {
  /** Request line and headers, from their first byte (a real client sends them in one write). */
  headersMs: number;
  /** The whole request, body included: a 4 MiB deployment log at about 7 KB/s. */
  requestMs: number;
  /** TLS handshake, from the TCP accept. */
  handshakeMs: number;
}

export const DEVICE_TIMEOUTS: Readonly<DeviceTimeouts> = { headersMs: 18_000, requestMs: 600_000, handshakeMs: 15_000 };

// Node checks the headers and request timeouts on a timer (30 s by default): a slowloris
// would live up to 30 s past its bound. The check walks only connections with a request in
// progress.
const TIMEOUT_CHECK_MS = 2_000;

// TLS 1.2 suites: AEAD with forward secrecy only (Mozilla's "intermediate" profile, without
// its DHE suites: there are no DH parameters to offer them with). TLS 1.3 keeps Node's own.
// Go's crypto/tls (client 3.4) and OpenSSL 3 (client 5.1) both offer ECDHE-GCM.
const TLS12_AEAD = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
];
const TLS13_SUITES = DEFAULT_CIPHERS.split(':').filter((suite) => suite.startsWith('TLS_'));
export const DEVICE_CIPHERS = [...TLS13_SUITES, ...TLS12_AEAD].join(':');

// No TLS 1.2 renegotiation (TLS 1.3 has none): a client could present another certificate on
// a connection already admitted, and the verdict is made once, at the handshake. Devices
// never renegotiate. Part of the options a SIGHUP's new secure context is made from, too.
const NO_RENEGOTIATION = cryptoConstants.SSL_OP_NO_RENEGOTIATION;

/** The listener's secureOptions: those given, and never renegotiation. */
export function withoutRenegotiation(secureOptions: number | undefined): number {
  return (secureOptions ?? 0) | NO_RENEGOTIATION;
}

export function tlsOptionsFor(settings: GatewayConfig['HTTPS']): https.ServerOptions {
  const minVersion = TLS_VERSIONS[settings.MinimumTLSVersion];
  return {
    secureOptions: NO_RENEGOTIATION,
    cert: readFileSync(settings.ServerCertificate),
    key: readFileSync(settings.ServerKey),
    minVersion,
    // OpenSSL 3 refuses TLS 1.0/1.1 at its default security level; an operator who asked
    // for them gets them, and the CBC suites they need.
    ciphers: minVersion === 'TLSv1' || minVersion === 'TLSv1.1' ? 'DEFAULT@SECLEVEL=0' : DEVICE_CIPHERS,
  };
}

export function createDeviceServer(
  protocol: Protocol,
  tls: https.ServerOptions | undefined,
  timeouts: Readonly<DeviceTimeouts> = DEVICE_TIMEOUTS,
): DeviceServer {
  const options: http.ServerOptions = {
    keepAliveTimeout: KEEP_ALIVE_MS,
    headersTimeout: timeouts.headersMs,
    requestTimeout: timeouts.requestMs,
    connectionsCheckingInterval: Math.min(TIMEOUT_CHECK_MS, timeouts.headersMs),
  };
  if (protocol === 'http') return http.createServer(options);
  const server = https.createServer({
    ...tls,
    secureOptions: withoutRenegotiation(tls?.secureOptions),
    ...options,
    handshakeTimeout: timeouts.handshakeMs,
  });
  // A TLS failure (a handshake timeout too) ends the connection here: Node hands it on to
  // 'clientError', whose HTTP answer cannot go out on a socket that never became TLS, and
  // would otherwise leave it open.
  server.prependListener('tlsClientError', (_err: Error, socket: Socket) => socket.destroy());
  return server;
}

/** Listen on a configured "host:port"; a readable error when it cannot. */
export async function listen(server: DeviceServer, listenSetting: string, key: string): Promise<AddressInfo> {
  const { host, port } = parseListen(listenSetting);
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'address already in use' : err.code === 'EACCES' ? 'permission denied' : err.message;
      reject(new Error(`${key} ${listenSetting}: cannot listen: ${why}`));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  return server.address() as AddressInfo;
}

/** Stop accepting, let requests in flight finish within `timeoutMs`, then cut what is left. */
export async function closeGracefully(server: DeviceServer, upgraded: Set<Socket>, timeoutMs: number): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const socket of upgraded) socket.destroy();
  // Busy keep-alive connections become idle once their response is sent; close them then.
  const sweep = setInterval(() => server.closeIdleConnections(), 100);
  const deadline = new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref());
  await Promise.race([closed, deadline]);
  clearInterval(sweep);
  server.closeAllConnections();
  await closed;
}
