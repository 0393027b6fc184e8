import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { SecureVersion } from 'node:tls';
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

export function tlsOptionsFor(settings: GatewayConfig['HTTPS']): https.ServerOptions {
  const minVersion = TLS_VERSIONS[settings.MinimumTLSVersion];
  return {
    cert: readFileSync(settings.ServerCertificate),
    key: readFileSync(settings.ServerKey),
    minVersion,
    // OpenSSL 3 refuses TLS 1.0/1.1 at its default security level; an operator who asked
    // for them gets them.
    ...(minVersion === 'TLSv1' || minVersion === 'TLSv1.1' ? { ciphers: 'DEFAULT@SECLEVEL=0' } : {}),
  };
}

export function createDeviceServer(protocol: Protocol, tls: https.ServerOptions | undefined): DeviceServer {
  const server = protocol === 'https' ? https.createServer(tls ?? {}) : http.createServer();
  server.keepAliveTimeout = KEEP_ALIVE_MS;
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
