import { mkdir, open, readFile, rename, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { SELF, processAlive, type ProcessIdentity } from '../server/process-liveness';

// The journal on disk: one append-only file, `reports.journal`, mode 0600 in a 0700 directory
// (it holds device tokens), and `reports.lock` beside it. Below, in order: the record format,
// the file (append with group commit, compaction), the lock.

// The format: one record per line, `<crc32 hex> <JSON>\n`. A record is either a report to
// deliver (`add`) or the end of one (`done`). A crash can leave a torn last line: decoding stops
// at the first line that is incomplete or fails its checksum, and says how many bytes were valid
// so the file can be cut back there.

export type ReportKind = 'status' | 'log' | 'inventory';

/** What finally happened to a report; every one ends in exactly one of these. */
export type ReportResult =
  | 'delivered' // upstream answered 2xx
  | 'aborted' // 409: the deployment was aborted (or the device decommissioned)
  | 'rejected' // another 4xx: upstream refused it (logged with the status)
  | 'unauthorized' // 401 and no newer token from the device before it expired
  | 'expired' // older than MaxAge, upstream never reached
  | 'superseded'; // an inventory replaced by a newer one of the same device

export interface JournalEntry {
  seq: number;
  /** ms since epoch when the device sent it */
  at: number;
  device: string;
  /**
   * The device's token was known good (upstream had accepted or issued it) when the report was
   * journaled. Older gateways keyed a report by the token's unverified `sub`: such a report is
   * replayed with its own token only, never with a newer one of the device it names.
   */
  trusted?: boolean;
  kind: ReportKind;
  method: string;
  /** path and query as the device sent it */
  path: string;
  /** the device's headers, Authorization included (hence the file's mode 0600) */
  headers: Record<string, string>;
  body: Buffer;
}

export type JournalRecord = { t: 'add'; entry: JournalEntry } | { t: 'done'; seq: number; result: ReportResult; status?: number };

/** An entry as one JSON line: the body in base64. */
type AddLine = { t: 'add' } & Omit<JournalEntry, 'body'> & { body: string };

export function encodeRecord(record: JournalRecord): Buffer {
  const json =
    record.t === 'add'
      ? JSON.stringify({ t: 'add', ...record.entry, body: record.entry.body.toString('base64') } satisfies AddLine)
      : JSON.stringify(record);
  const payload = Buffer.from(json, 'utf8');
  const crc = crc32(payload).toString(16).padStart(8, '0');
  return Buffer.concat([Buffer.from(`${crc} `), payload, Buffer.from('\n')]);
}

export interface Decoded {
  records: JournalRecord[];
  /** bytes of whole, valid records from the start; anything after is torn or corrupt */
  validBytes: number;
}

export function decodeRecords(data: Buffer): Decoded {
  const records: JournalRecord[] = [];
  let offset = 0;
  while (offset < data.length) {
    const end = data.indexOf(0x0a, offset);
    if (end < 0) break; // torn: no newline yet
    const record = decodeLine(data.subarray(offset, end));
    if (!record) break;
    records.push(record);
    offset = end + 1;
  }
  return { records, validBytes: offset };
}

function decodeLine(line: Buffer): JournalRecord | undefined {
  if (line.length < 10 || line[8] !== 0x20) return undefined;
  const payload = line.subarray(9);
  if (crc32(payload).toString(16).padStart(8, '0') !== line.subarray(0, 8).toString('latin1')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
  const r = parsed as Omit<Partial<AddLine>, 't'> & { t?: string; result?: ReportResult; status?: number };
  if (r.t === 'done' && typeof r.seq === 'number' && typeof r.result === 'string') {
    return { t: 'done', seq: r.seq, result: r.result, ...(typeof r.status === 'number' ? { status: r.status } : {}) };
  }
  if (r.t === 'add' && typeof r.seq === 'number' && typeof r.device === 'string' && typeof r.body === 'string') {
    const { t: _t, body, ...rest } = r as unknown as AddLine;
    return { t: 'add', entry: { ...rest, body: Buffer.from(body, 'base64') } };
  }
  return undefined;
}

// The file: every append is on disk (fdatasync) before its promise resolves; appends that
// arrive while a sync runs are written and synced together (group commit), so a fleet reporting
// at once costs a few syncs, not one per device. Compaction rewrites the live records to a
// temporary file, syncs it and renames it over the journal.

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

// The lock, one gateway per journal directory: two writers would interleave one file and replay
// each other's reports. The owner's pid and start time are in `reports.lock` (created
// exclusively); a lock whose process is gone (kill -9, or its pid now names another process) is
// taken over, and so is one naming this very pid (a container restarted with the same pid). The
// primary of a cluster holds it for all its workers.

const LOCK = 'reports.lock';

/** "<pid>[ <start>]", as written below; null when it is not that. */
function parseOwner(text: string): ProcessIdentity | null {
  const m = /^(\d+)(?: (\d+))?\s*$/.exec(text.trim());
  if (!m || Number(m[1]) <= 0) return null;
  return m[2] === undefined ? { pid: Number(m[1]) } : { pid: Number(m[1]), start: Number(m[2]) };
}

async function takeJournalLock(dir: string): Promise<void> {
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

async function releaseJournalLock(dir: string): Promise<void> {
  const path = join(dir, LOCK);
  const owner = parseOwner(await readFile(path, 'utf8').catch(() => ''));
  if (owner?.pid === process.pid) await unlink(path).catch(() => undefined);
}
