import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMenderServer, type MenderServer } from '../../fixtures/mender-server';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import { writeGatewayConfig, type GatewayProcess } from '../support/gateway-process';

// What the report-journal tests that run bin/gateway.js stand on: a temp dir, the S3 store, the
// emulator (auto-accept) with one artifact, and a gateway config with the journal in the temp
// dir (`extra` adds keys, e.g. Workers). stopJournalBed brings the emulator back before closing.

export interface JournalBed {
  dir: string;
  store: S3Store;
  server: MenderServer;
  configFile: string;
}

export async function startJournalBed(prefix: string, artifactName: string, extra: Record<string, unknown> = {}): Promise<JournalBed> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const store = await startS3Store({});
  const server = await startMenderServer({ store, autoAccept: true });
  const file = join(dir, 'a.mender');
  writeFileSync(file, randomBytes(8192));
  await server.uploadArtifact(file, { name: artifactName, deviceTypes: ['test-device'] });
  const configFile = writeGatewayConfig(dir, {
    HTTP: { Enabled: true, Listen: '127.0.0.1:0' },
    UpstreamServer: { URL: server.url, Timeout: '2s' },
    Features: { ReportJournal: { Enabled: true, Path: join(dir, 'journal') } },
    ...extra,
  });
  return { dir, store, server, configFile };
}

export async function stopJournalBed(bed: JournalBed | undefined): Promise<void> {
  if (!bed) return;
  await bed.server.start();
  await bed.server.close();
  await bed.store.close();
  rmSync(bed.dir, { recursive: true, force: true });
}

/** kill -9, resolved once the process is gone. */
export function killed(g: GatewayProcess): Promise<void> {
  return new Promise((resolve) => {
    g.process.once('exit', () => resolve());
    g.process.kill('SIGKILL');
  });
}
