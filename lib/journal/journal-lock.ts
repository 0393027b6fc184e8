import { readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SELF, processAlive, type ProcessIdentity } from '../server/process-liveness';

// One gateway per journal directory: two writers would interleave one file and replay each
// other's reports. The owner's pid and start time are in `reports.lock` (created exclusively);
// a lock whose process is gone (kill -9, or its pid now names another process) is taken over,
// and so is one naming this very pid (a container restarted with the same pid). The primary of
// a cluster holds it for all its workers.

const LOCK = 'reports.lock';

/** "<pid>[ <start>]", as written below; null when it is not that. */
function parseOwner(text: string): ProcessIdentity | null {
  const m = /^(\d+)(?: (\d+))?\s*$/.exec(text.trim());
  if (!m || Number(m[1]) <= 0) return null;
  return m[2] === undefined ? { pid: Number(m[1]) } : { pid: Number(m[1]), start: Number(m[2]) };
}

export async function takeJournalLock(dir: string): Promise<void> {
  const path = join(dir, LOCK);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(path, `${SELF.pid}${SELF.start === undefined ? '' : ` ${SELF.start}`}\n`, { flag: 'wx', mode: 0o600 });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = parseOwner(await readFile(path, 'utf8').catch(() => ''));
    if (owner && owner.pid !== process.pid && processAlive(owner)) {
      throw new Error(`the journal is in use by process ${owner.pid} (one gateway per journal directory)`);
    }
    await unlink(path).catch(() => undefined); // stale: its owner is gone
  }
  throw new Error('the journal lock is being taken by another process at the same time');
}

export async function releaseJournalLock(dir: string): Promise<void> {
  const path = join(dir, LOCK);
  const owner = parseOwner(await readFile(path, 'utf8').catch(() => ''));
  if (owner?.pid === process.pid) await unlink(path).catch(() => undefined);
}
