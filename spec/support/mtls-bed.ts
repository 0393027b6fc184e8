import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMenderServer, type MenderServer, type MenderServerOptions } from '../../fixtures/mender-server';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import type { GatewayConfig } from '../../lib/config/types';
import type { Logger } from '../../lib/observe/log';
import { type GatewayOptions, type RunningGateway, startGateway } from '../../lib/gateway';
import { captureLog } from './capture-log';
import { type DeepPartial, testConfig } from './gateway-config';
import { makeTlsMaterial, type TlsMaterial } from './tls-material';

// What the mTLS integration tests stand on: a folder, a CA with server and device material, the
// S3 store and the Mender server emulator with the management user the gateway logs in as.
// close() closes the gateways a test pushed, brings the server back from an outage first.

export interface MtlsBed {
  dir: string;
  tls: TlsMaterial;
  store: S3Store;
  server: MenderServer;
  gateways: RunningGateway[];
  /**
   * A gateway on the bed: HTTPS with the bed's certificate (HTTP off), the emulator upstream, and
   * mTLS's CA and management user filled in (mTLS on only if `overrides` turns it on).
   */
  startGateway(overrides: DeepPartial<GatewayConfig>, log?: Logger, options?: GatewayOptions): Promise<BedGateway>;
  close(): Promise<void>;
}

export interface BedGateway {
  gateway: RunningGateway;
  https: string;
  /** When `overrides` turned HTTP on. */
  http?: string;
}

export async function startMtlsBed(prefix: string, server: Omit<MenderServerOptions, 'store'>): Promise<MtlsBed> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const tls = makeTlsMaterial(dir);
  const store = await startS3Store();
  const emulator = await startMenderServer({ store, ...server });
  const gateways: RunningGateway[] = [];
  const user = server.users?.[0];
  return {
    dir,
    tls,
    store,
    server: emulator,
    gateways,
    async startGateway(overrides, log = captureLog('error').log, options) {
      const base: DeepPartial<GatewayConfig> = {
        HTTP: { Enabled: false },
        HTTPS: { Enabled: true, ServerCertificate: tls.server.cert, ServerKey: tls.server.key },
        UpstreamServer: { URL: emulator.url, Timeout: '2s' },
        Features: { mTLS: { CACertificate: tls.ca.cert, MenderUsername: user?.email ?? '', MenderPassword: user?.password ?? '' } },
      };
      const gateway = await startGateway(testConfig(base, overrides), log, options);
      gateways.push(gateway);
      const at = (port: number | undefined, scheme: string) => (port === undefined ? undefined : `${scheme}://127.0.0.1:${port}`);
      return { gateway, https: at(gateway.addresses.https?.port, 'https')!, http: at(gateway.addresses.http?.port, 'http') };
    },
    async close() {
      for (const g of gateways) await g.close(0);
      await emulator.start();
      await emulator.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
