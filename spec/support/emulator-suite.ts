import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { startMenderServer, type MenderServer, type MenderServerOptions } from '../../fixtures/mender-server';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import type { RunningGateway } from '../../lib/gateway';

// The frame of a test file that runs gateways in-process against the emulator: a scratch
// directory, the S3 store and the emulator started before the file's tests, and everything closed
// after them (the emulator started again first, in case a test left it stopped for an outage).

export interface EmulatorSuite {
  readonly dir: string;
  readonly store: S3Store;
  readonly server: MenderServer;
  /** Gateways the file started; each still here is closed after the file. */
  readonly gateways: RunningGateway[];
  /** Close one before the end (a restart), and forget it. */
  closeGateway(g: RunningGateway): Promise<void>;
}

export function emulatorSuite(prefix: string, options: Omit<MenderServerOptions, 'store'> = {}): EmulatorSuite {
  let dir!: string;
  let store!: S3Store;
  let server!: MenderServer;
  const gateways: RunningGateway[] = [];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), prefix));
    store = await startS3Store();
    server = await startMenderServer({ ...options, store });
  });
  after(async () => {
    for (const g of gateways) await g.close(0);
    await server?.start();
    await server?.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    get dir() {
      return dir;
    },
    get store() {
      return store;
    },
    get server() {
      return server;
    },
    gateways,
    async closeGateway(g) {
      const at = gateways.indexOf(g);
      if (at >= 0) gateways.splice(at, 1);
      await g.close(0);
    },
  };
}
