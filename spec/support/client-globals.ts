import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import * as lockfile from 'proper-lockfile';

// The mender client reads two files at fixed, compiled-in paths (real-client.md §1): the identity
// script and /etc/mender/artifact_info. Tests install ours while holding a machine-wide lock, keep
// any file that was there as `<path>.open-gateway-backup`, and put it back on release. A backup
// found while acquiring means an earlier run died holding the files: it is restored first.

export const IDENTITY_SCRIPT = '/usr/share/mender/identity/mender-device-identity';
export const ARTIFACT_INFO = '/etc/mender/artifact_info';
export const INITIAL_ARTIFACT_NAME = 'factory-image-0';
const LOCK_TARGET = '/tmp/open-mender-gateway-real-clients';
/** In every file we install: only a file carrying it is ever deleted. */
export const MARK = '# installed by open-mender-gateway tests';

const ours: Record<string, { text: string; mode: number }> = {
  // The script inherits each client's environment, so MENDER_TEST_MAC makes the identity.
  [IDENTITY_SCRIPT]: { text: `#!/bin/sh\n${MARK}\necho "mac=\${MENDER_TEST_MAC:-02:00:00:00:00:01}"\n`, mode: 0o755 },
  [ARTIFACT_INFO]: { text: `${MARK}\nartifact_name=${INITIAL_ARTIFACT_NAME}\n`, mode: 0o644 },
};

const backupOf = (path: string): string => `${path}.open-gateway-backup`;

/** Put back what install() replaced: the backup if any, else remove our file (never someone else's). */
export function restoreGlobalFile(path: string): void {
  const backup = backupOf(path);
  if (existsSync(backup)) renameSync(backup, path);
  else if (existsSync(path) && readFileSync(path, 'utf8').includes(MARK)) rmSync(path);
}

/** Write our file at path, keeping whatever was there as the backup (after undoing a crashed run's). */
export function installGlobalFile(path: string, text: string, mode: number): void {
  restoreGlobalFile(path);
  mkdirSync(dirname(path), { recursive: true });
  if (existsSync(path)) copyFileSync(path, backupOf(path));
  writeFileSync(path, text, { mode });
  chmodSync(path, mode); // writeFileSync keeps the mode of a file it overwrites
}

let holders = 0;
let release: (() => Promise<void>) | null = null;
let acquiring: Promise<void> | null = null;

/** Install the global files (reference-counted within this process, locked across processes). */
export async function acquireClientGlobals(waitSeconds = 600): Promise<void> {
  holders++;
  if (release) return;
  if (!acquiring) {
    acquiring = (async () => {
      writeFileSync(LOCK_TARGET, '', { flag: 'a' });
      const options = {
        realpath: false,
        stale: 15_000,
        // The default handler throws from a timer; a lost lock only risks a clash on two files.
        onCompromised: (err: Error) => process.stderr.write(`real clients: lock ${LOCK_TARGET} compromised: ${err.message}\n`),
      };
      let unlock: () => Promise<void>;
      try {
        unlock = await lockfile.lock(LOCK_TARGET, options);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
        process.stderr.write(`real clients: another run holds ${LOCK_TARGET}.lock; waiting up to ${waitSeconds} s\n`);
        unlock = await lockfile.lock(LOCK_TARGET, {
          ...options,
          retries: { retries: Math.ceil(waitSeconds), factor: 1, minTimeout: 1000, maxTimeout: 1000 },
        });
      }
      for (const [path, { text, mode }] of Object.entries(ours)) installGlobalFile(path, text, mode);
      release = unlock;
    })().finally(() => {
      acquiring = null;
    });
  }
  try {
    await acquiring;
  } catch (err) {
    holders--;
    throw err;
  }
}

/** Undo acquireClientGlobals once the last holder in this process lets go. */
export async function releaseClientGlobals(): Promise<void> {
  if (holders === 0) return;
  holders--;
  if (holders > 0 || !release) return;
  const unlock = release;
  release = null;
  for (const path of Object.keys(ours)) restoreGlobalFile(path);
  await unlock();
}

/** Synchronous last resort for process exit: put the files back (the lock goes stale by itself). */
export function restoreClientGlobalsNow(): void {
  if (!release) return;
  release = null;
  holders = 0;
  for (const path of Object.keys(ours)) restoreGlobalFile(path);
}
