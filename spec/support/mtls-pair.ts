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

export interface MtlsConfigOptions {
  tls: TlsMaterial;
  upstreamUrl: string;
  user: { email: string; password: string };
  /** The gateway's MenderPassword, when it is not the user's. */
  password?: string;
  /** Also the plain HTTP listener. */
  http?: boolean;
  https?: Partial<GatewayConfig['HTTPS']>;
  mtls?: Partial<GatewayConfig['Features']['mTLS']>;
}

/** A gateway config with mTLS on its HTTPS listener, `user` as its management login, in front of `upstreamUrl`. */
export function mtlsTestConfig(opts: MtlsConfigOptions): GatewayConfig {
  return testConfig({
    HTTP: { Enabled: opts.http ?? false },
    HTTPS: { Enabled: true, ServerCertificate: opts.tls.server.cert, ServerKey: opts.tls.server.key, ...opts.https },
    UpstreamServer: { URL: opts.upstreamUrl },
    Features: {
      mTLS: {
        Enabled: true,
        CACertificate: opts.tls.ca.cert,
        MenderUsername: opts.user.email,
        MenderPassword: opts.password ?? opts.user.password,
        ...opts.mtls,
      },
    },
  });
}

export async function startMtlsPair(opts: MtlsPairOptions) {
  const server: MenderServer = await startMenderServer({
    store: opts.store,
    users: [opts.user],
    jwtLifetimeSeconds: opts.jwtLifetimeSeconds,
  });
  const captured = captureLog('debug');
  const gateway = await startGateway(
    mtlsTestConfig({ ...opts, upstreamUrl: server.url, mtls: { EnableCache: true, ...opts.mtls } }),
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
