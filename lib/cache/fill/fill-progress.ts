import { EventEmitter } from 'node:events';

// The state of one fill, shared by every device that waits for it. Followers read the
// growing tmp file up to `written` (bytes already handed to the kernel, so a read sees
// them) and are woken by 'change'. The fill owns this object, never a device.

/** What a waiting device learns once the fill knows what it is filling. */
export type FillStart =
  | { kind: 'growing'; size: number; etag: string | null }
  /** Another process published the entry while we waited for its lock: serve it from disk. */
  | { kind: 'published' }
  /** No room on disk (or no length from the origin): stream from the origin, uncached. */
  | { kind: 'uncached'; reason: string };

export type FillState = 'starting' | 'growing' | 'done' | 'failed';

export class FillProgress extends EventEmitter {
  readonly id: string;
  readonly key: string;
  state: FillState = 'starting';
  size = 0;
  etag: string | null = null;
  /** The origin's Last-Modified: with the ETag, the validators a device's If-Range is checked against. */
  lastModified: string | null = null;
  written = 0;
  /** The tmp file while growing; the object path once published (an open fd survives the rename). */
  path = '';
  finalPath = '';
  error: Error | null = null;
  /** The bytes are another process's fill, followed from its tmp file (follow-other-fill.ts). */
  followed = false;
  readonly started: Promise<FillStart>;
  private resolveStart!: (s: FillStart) => void;
  private rejectStart!: (e: Error) => void;

  constructor(id: string, key: string) {
    super();
    this.setMaxListeners(0);
    this.id = id;
    this.key = key;
    this.started = new Promise<FillStart>((resolve, reject) => {
      this.resolveStart = resolve;
      this.rejectStart = reject;
    });
    this.started.catch(() => undefined);
  }

  begin(size: number, etag: string | null, tmp: string, finalPath: string, lastModified: string | null = null): void {
    this.size = size;
    this.etag = etag;
    this.lastModified = lastModified;
    this.path = tmp;
    this.finalPath = finalPath;
    this.state = 'growing';
    this.resolveStart({ kind: 'growing', size, etag });
  }

  /** Settle a fill that never started growing (published elsewhere, or uncached). */
  skip(start: Exclude<FillStart, { kind: 'growing' }>): void {
    this.state = 'done';
    this.resolveStart(start);
    this.emit('change');
  }

  advance(bytes: number): void {
    this.written += bytes;
    this.emit('change');
  }

  publish(): void {
    this.path = this.finalPath;
    this.state = 'done';
    this.emit('change');
  }

  fail(err: Error): void {
    if (this.state === 'done' || this.state === 'failed') return;
    this.error = err;
    this.state = 'failed';
    this.rejectStart(err);
    this.emit('change');
  }

  /**
   * Bytes a follower may send. The last byte is held back until the entry is verified and
   * published, so no device ever completes a download of an unverified artifact.
   */
  available(): number {
    if (this.state === 'done') return this.size;
    return Math.min(this.written, Math.max(0, this.size - 1));
  }

  /** Resolves at the next change of written bytes or state. */
  changed(): Promise<void> {
    return new Promise((resolve) => this.once('change', resolve));
  }
}
