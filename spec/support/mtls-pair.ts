import { startMenderServer, type MenderServer } from '../../fixtures/mender-server';
import type { S3Store } from '../../fixtures/s3-store';
import type { GatewayConfig } from '../../lib/config/types';
import { startGateway } from '../../lib/gateway';
import { captureLog } from './capture-log';
import { testConfig } from './gateway-config';
import type { TlsMaterial } from './tls-material';

// The gateway in-process with mTLS on its HTTPS listener (the preauthorization cache on) in
// front of a fresh Mender server emulator, whose user `user` is the gateway's management login.

export interface MtlsPairOptions {
  store: S3Store;
  tls: TlsMaterial;
  user: { email: string; password: string };
  mtls?: Partial<GatewayConfig['Features']['mTLS']>;
  jwtLifetimeSeconds?: number;
  /** The gateway's MenderPassword, when it is not the user's. */
  password?: string;
  /** Also the plain HTTP listener. */
  http?: boolean;
}

export async function startMtlsPair(opts: MtlsPairOptions) {
  const server: MenderServer = await startMenderServer({
    store: opts.store,
    users: [opts.user],
    jwtLifetimeSeconds: opts.jwtLifetimeSeconds,
  });
  const captured = captureLog('debug');
  const gateway = await startGateway(
    testConfig({
      HTTP: { Enabled: opts.http ?? false },
      HTTPS: { Enabled: true, ServerCertificate: opts.tls.server.cert, ServerKey: opts.tls.server.key },
      UpstreamServer: { URL: server.url },
      Features: {
        mTLS: {
          Enabled: true,
          CACertificate: opts.tls.ca.cert,
          MenderUsername: opts.user.email,
          MenderPassword: opts.password ?? opts.user.password,
          EnableCache: true,
          ...opts.mtls,
        },
      },
    }),
    captured.log,
  );
  const url = `https://127.0.0.1:${gateway.addresses.https!.port}`;
  return {
    server,
    gateway,
    url,
    captured,
    async close() {
      await gateway.close(0);
      await server.close();
    },
  };
}

export type MtlsPair = Awaited<ReturnType<typeof startMtlsPair>>;
