import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMenderServer, type MenderServer, type MenderServerOptions } from '../../fixtures/mender-server';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import type { RunningGateway } from '../../lib/gateway';
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
  close(): Promise<void>;
}

export async function startMtlsBed(prefix: string, server: Omit<MenderServerOptions, 'store'>): Promise<MtlsBed> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const tls = makeTlsMaterial(dir);
  const store = await startS3Store();
  const emulator = await startMenderServer({ store, ...server });
  const gateways: RunningGateway[] = [];
  return {
    dir,
    tls,
    store,
    server: emulator,
    gateways,
    async close() {
      for (const g of gateways) await g.close(0);
      await emulator.start();
      await emulator.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
