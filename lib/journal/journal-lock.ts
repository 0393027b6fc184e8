import { readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

// One gateway per journal directory: two writers would interleave one file and replay each
// other's reports. The owner's pid is in `reports.lock` (created exclusively); a lock whose
// process is gone (kill -9) is taken over, and so is one naming this very pid (a container
// restarted with the same pid). The primary of a cluster holds it for all its workers.

const LOCK = 'reports.lock';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function takeJournalLock(dir: string): Promise<void> {
  const path = join(dir, LOCK);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && alive(owner)) {
      throw new Error(`the journal is in use by process ${owner} (one gateway per journal directory)`);
    }
    await unlink(path).catch(() => undefined); // stale: its owner is gone
  }
  throw new Error('the journal lock is being taken by another process at the same time');
}

export async function releaseJournalLock(dir: string): Promise<void> {
  const path = join(dir, LOCK);
  const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
  if (owner === process.pid) await unlink(path).catch(() => undefined);
}
