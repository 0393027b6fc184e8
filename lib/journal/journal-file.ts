import { mkdir, open, readFile, rename, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { releaseJournalLock, takeJournalLock } from './journal-lock';
import { decodeRecords, type JournalRecord } from './journal-record';

// The journal on disk: one append-only file, `reports.journal`, mode 0600 in a 0700 directory
// (it holds device tokens). Every append is on disk (fdatasync) before its promise resolves;
// appends that arrive while a sync runs are written and synced together (group commit), so a
// fleet reporting at once costs a few syncs, not one per device. Compaction rewrites the live
// records to a temporary file, syncs it and renames it over the journal.

export const JOURNAL_FILE = 'reports.journal';

interface Waiting {
  data: Buffer;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class JournalFile {
  private queue: Waiting[] = [];
  private writing = false;
  private compactWith: (() => Buffer) | undefined;
  private compacted: { resolve: () => void; reject: (err: Error) => void }[] = [];
  /** bytes in the file now */
  size: number;

  private constructor(
    readonly dir: string,
    private handle: FileHandle,
    size: number,
  ) {
    this.size = size;
  }

  /** Open (creating) the journal in dir; returns the records of the file, a torn tail cut off. */
  static async open(dir: string): Promise<{ file: JournalFile; records: JournalRecord[]; tornBytes: number }> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await takeJournalLock(dir);
    try {
      const path = join(dir, JOURNAL_FILE);
      let data: Buffer;
      try {
        data = await readFile(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        data = Buffer.alloc(0);
      }
      const { records, validBytes } = decodeRecords(data);
      const handle = await open(path, 'a+', 0o600);
      const tornBytes = data.length - validBytes;
      if (tornBytes > 0) {
        await handle.truncate(validBytes);
        await handle.sync();
      }
      return { file: new JournalFile(dir, handle, validBytes), records, tornBytes };
    } catch (err) {
      await releaseJournalLock(dir);
      throw err;
    }
  }

  append(data: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ data, resolve, reject });
      void this.drain();
    });
  }

  /** Replace the file by `live()` (evaluated when no append is in progress). */
  compact(live: () => Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.compactWith = live;
      this.compacted.push({ resolve, reject });
      void this.drain();
    });
  }

  private async drain(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    try {
      while (this.queue.length > 0 || this.compactWith) {
        if (this.queue.length > 0) {
          const batch = this.queue.splice(0);
          try {
            const data = Buffer.concat(batch.map((w) => w.data));
            await this.handle.write(data, 0, data.length, null);
            await this.handle.datasync();
            this.size += data.length;
            for (const w of batch) w.resolve();
          } catch (err) {
            for (const w of batch) w.reject(err as Error);
          }
        }
        // Let the callers of the batch just synced record it in memory before `live()` runs.
        if (this.compactWith) await new Promise((resolve) => setImmediate(resolve));
        if (this.compactWith && this.queue.length === 0) {
          const live = this.compactWith;
          const waiting = this.compacted.splice(0);
          this.compactWith = undefined;
          try {
            await this.rewrite(live());
            for (const w of waiting) w.resolve();
          } catch (err) {
            for (const w of waiting) w.reject(err as Error);
          }
        }
      }
    } finally {
      this.writing = false;
    }
  }

  private async rewrite(data: Buffer): Promise<void> {
    const path = join(this.dir, JOURNAL_FILE);
    const tmp = `${path}.tmp`;
    const out = await open(tmp, 'w', 0o600);
    try {
      await out.write(data, 0, data.length, 0);
      await out.sync();
    } finally {
      await out.close();
    }
    await rename(tmp, path);
    const dirHandle = await open(this.dir, 'r');
    try {
      await dirHandle.sync();
    } finally {
      await dirHandle.close();
    }
    await this.handle.close();
    this.handle = await open(path, 'a+', 0o600);
    this.size = (await stat(path)).size;
  }

  async close(): Promise<void> {
    while (this.writing || this.queue.length > 0) await new Promise((r) => setTimeout(r, 5));
    await this.handle.close();
    await releaseJournalLock(this.dir);
  }
}
