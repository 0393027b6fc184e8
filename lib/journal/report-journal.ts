import type { Logger } from '../observe/log';
import { journalMetrics, type JournalStats } from '../observe/metrics';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { encodeRecord, JOURNAL_FILE, JournalFile, type JournalEntry, type JournalRecord, type ReportResult } from './journal-file';

// The reports waiting for upstream, per device in arrival order, backed by the journal file.
// It enforces the bounds (MaxSize of waiting reports, MaxAge), keeps only the newest inventory
// of a device, and counts every ending: nothing leaves it without a `done` record and a counter.

export interface ReportJournalOptions {
  dir: string;
  maxBytes: number;
  /** MaxDeviceSize: bytes of waiting reports of one device (default: no bound of its own) */
  maxDeviceBytes?: number;
  maxAgeMs: number;
  /** Devices with reports waiting at once (default MAX_JOURNAL_DEVICES) */
  maxDevices?: number;
  log: Logger;
}

/**
 * Devices with reports waiting at once. MaxSize bounds the bytes, not the devices: a fleet of
 * small reports could fill it with a million devices, and every per-device map of the replay
 * (report-replay.ts) is as long as this. Ten thousand: a site's fleet in one outage; a report of
 * a device past it gets the upstream error, as with a full journal, and is sent again by the device.
 */
export const MAX_JOURNAL_DEVICES = 10_000;

const FAILED: ReadonlySet<ReportResult> = new Set(['rejected', 'unauthorized', 'expired']);

export class ReportJournal {
  // Bounded by what waits, which is bounded: `queues` and `deviceBytes` hold a device only
  // while it has a report waiting (at most maxDevices; a file written under larger bounds is
  // loaded whole), `sizes` a report only while it waits (each one at least its encoded size of
  // MaxSize). MaxAge ends every report, so every entry.
  // Not BoundedMaps: an entry is a durable report, never dropped to make room.
  private readonly queues = new Map<string, JournalEntry[]>();
  private readonly sizes = new Map<number, number>();
  private readonly deviceBytes = new Map<string, number>();
  private liveBytes = 0;
  private nextSeq = 1;
  readonly stats: JournalStats = { queued: 0, bytes: 0, devices: 0, journaled: 0, replayed: 0, failed: 0, superseded: 0 };

  private file: JournalFile | undefined;
  private opening: Promise<JournalFile> | undefined;

  private constructor(private readonly options: ReportJournalOptions) {}

  /** MaxAge: nothing kept of a device with waiting reports outlives them (report-replay.ts). */
  get maxAgeMs(): number {
    return this.options.maxAgeMs;
  }

  get maxDevices(): number {
    return this.options.maxDevices ?? MAX_JOURNAL_DEVICES;
  }

  /**
   * Open the journal in options.dir. lazy: when the directory holds no journal yet, nothing is
   * made (no directory, no file, no lock) until the first report has to wait; a gateway whose
   * upstream never fails never writes device tokens to disk.
   */
  static async open(options: ReportJournalOptions & { lazy?: boolean }): Promise<ReportJournal> {
    if (options.lazy && !existsSync(join(options.dir, JOURNAL_FILE))) {
      options.log.info('report journal ready: made at the first report that has to wait', { dir: options.dir });
      return ReportJournal.deferred(options);
    }
    const journal = ReportJournal.deferred(options);
    await journal.fileNow();
    options.log.info('report journal open', { dir: options.dir, queued: journal.stats.queued, devices: journal.queues.size });
    await journal.compactIfWorth();
    return journal;
  }

  /** A journal whose file is opened only when the first report has to wait. */
  static deferred(options: ReportJournalOptions): ReportJournal {
    const journal = new ReportJournal(options);
    journalMetrics.watch(() => journal.stats);
    return journal;
  }

  /** The file, opened (and what it held queued) on first use; a failure is retried next time. */
  private fileNow(): Promise<JournalFile> {
    if (this.file) return Promise.resolve(this.file);
    this.opening ??= JournalFile.open(this.options.dir).then(
      ({ file, records, tornBytes }) => {
        this.file = file;
        this.load(records);
        if (tornBytes > 0)
          this.options.log.warn('report journal: torn last record dropped (the device got no answer for it)', { bytes: tornBytes });
        return file;
      },
      (err: unknown) => {
        this.opening = undefined;
        throw err;
      },
    );
    return this.opening;
  }

  private load(records: JournalRecord[]): void {
    const live = new Map<number, JournalEntry>();
    for (const r of records) {
      if (r.t === 'add') live.set(r.entry.seq, r.entry);
      else live.delete(r.seq);
      this.nextSeq = Math.max(this.nextSeq, (r.t === 'add' ? r.entry.seq : r.seq) + 1);
    }
    for (const entry of [...live.values()].sort((a, b) => a.seq - b.seq)) this.remember(entry);
  }

  /**
   * Make a report durable. 'full': over MaxSize or past maxDevices devices, 'device-full': over the device's MaxDeviceSize;
   * not journaled either way (the device gets the upstream error).
   */
  async add(report: Omit<JournalEntry, 'seq'>): Promise<'journaled' | 'full' | 'device-full'> {
    const file = await this.fileNow();
    const entry: JournalEntry = { ...report, seq: this.nextSeq++ };
    const encoded = encodeRecord({ t: 'add', entry });
    const replaced = entry.kind === 'inventory' ? this.pendingOf(entry.device).filter((e) => e.kind === 'inventory') : [];
    const freed = replaced.reduce((n, e) => n + (this.sizes.get(e.seq) ?? 0), 0);
    const newDevice = !this.queues.has(entry.device);
    if (this.liveBytes - freed + encoded.length > this.options.maxBytes || (newDevice && this.queues.size >= this.maxDevices)) {
      this.stats.failed++;
      journalMetrics.failed('full');
      return 'full';
    }
    const deviceBytes = (this.deviceBytes.get(entry.device) ?? 0) - freed + encoded.length;
    if (deviceBytes > (this.options.maxDeviceBytes ?? Infinity)) {
      this.stats.failed++;
      journalMetrics.failed('device_full');
      return 'device-full';
    }
    const records = [...replaced.map((e) => encodeRecord({ t: 'done', seq: e.seq, result: 'superseded' })), encoded];
    await file.append(Buffer.concat(records));
    for (const e of replaced) this.forget(e, 'superseded');
    this.remember(entry, encoded.length);
    this.stats.journaled++;
    journalMetrics.journaled(entry.kind);
    return 'journaled';
  }

  /** End a report (durably: a replay is not repeated after a restart once this resolved). */
  async finish(entry: JournalEntry, result: ReportResult, status?: number): Promise<void> {
    if (!this.sizes.has(entry.seq) || !this.file) return;
    await this.file.append(encodeRecord({ t: 'done', seq: entry.seq, result, ...(status === undefined ? {} : { status }) }));
    this.forget(entry, result);
    const fields = {
      device: entry.device,
      kind: entry.kind,
      path: entry.path.split('?')[0],
      result,
      status,
      age_s: Math.round((Date.now() - entry.at) / 1000),
    };
    if (FAILED.has(result)) this.options.log.warn('report journal: report not delivered', fields);
    else this.options.log.debug('report journal: report replayed', fields);
    await this.compactIfWorth();
  }

  /** Bytes of the device's waiting reports (as encoded in the file). */
  bytesOf(device: string): number {
    return this.deviceBytes.get(device) ?? 0;
  }

  pendingOf(device: string): readonly JournalEntry[] {
    return this.queues.get(device) ?? [];
  }

  devices(): string[] {
    return [...this.queues.keys()];
  }

  /**
   * End every report older than MaxAge: 'expired', or what `resultFor` says for its device
   * ('unauthorized': upstream's last answer was 401, recorded with that status).
   */
  async expire(now = Date.now(), resultFor: (device: string) => 'expired' | 'unauthorized' = () => 'expired'): Promise<void> {
    for (const queue of [...this.queues.values()]) {
      for (const entry of [...queue]) {
        if (now - entry.at <= this.options.maxAgeMs) continue;
        const result = resultFor(entry.device);
        await this.finish(entry, result, result === 'unauthorized' ? 401 : undefined);
      }
    }
  }

  async close(): Promise<void> {
    const file = this.file ?? (await this.opening?.catch(() => undefined));
    await file?.close();
  }

  private remember(entry: JournalEntry, size = encodeRecord({ t: 'add', entry }).length): void {
    let queue = this.queues.get(entry.device);
    if (!queue) {
      queue = [];
      this.queues.set(entry.device, queue);
    }
    queue.push(entry);
    this.sizes.set(entry.seq, size);
    this.liveBytes += size;
    this.deviceBytes.set(entry.device, this.bytesOf(entry.device) + size);
    this.updateGauges();
  }

  private forget(entry: JournalEntry, result: ReportResult): void {
    const queue = this.queues.get(entry.device) ?? [];
    const i = queue.findIndex((e) => e.seq === entry.seq);
    if (i >= 0) queue.splice(i, 1);
    const size = this.sizes.get(entry.seq) ?? 0;
    if (queue.length === 0) {
      this.queues.delete(entry.device);
      this.deviceBytes.delete(entry.device);
    } else this.deviceBytes.set(entry.device, this.bytesOf(entry.device) - size);
    this.liveBytes -= size;
    this.sizes.delete(entry.seq);
    if (result === 'superseded') this.stats.superseded++;
    else if (FAILED.has(result)) this.stats.failed++;
    else this.stats.replayed++;
    journalMetrics.ended(result);
    this.updateGauges();
  }

  private updateGauges(): void {
    this.stats.queued = this.sizes.size;
    this.stats.bytes = this.liveBytes;
    this.stats.devices = this.queues.size;
  }

  /** Keep the file near the size of what still waits: empty once everything is delivered. */
  private async compactIfWorth(): Promise<void> {
    if (!this.file || this.file.size === 0) return;
    const size = this.file.size;
    if (this.sizes.size > 0 && (size < 1024 * 1024 || size < 4 * this.liveBytes)) return;
    await this.file.compact(() => {
      const all = [...this.queues.values()].flat().sort((a, b) => a.seq - b.seq);
      return Buffer.concat(all.map((entry) => encodeRecord({ t: 'add', entry })));
    });
  }
}
