import type { FileHandle } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import type { ReadSizer } from './read-size';

// Copy [start, end) of a file to a response, one read buffer per stream, reused once the
// socket has taken the previous chunk. Each device reads at its own pace; the file (or the
// growing tmp file of a fill) is the only shared thing, never a stream pipe.

export interface ByteSource {
  /** Bytes of the file that may be sent now. */
  available(): number;
  /** Set when no more bytes will come. */
  failure(): Error | null;
  /** Resolves when `available()` or `failure()` may have changed. */
  changed(): Promise<void>;
}

export const completeFile = (size: number): ByteSource => ({
  available: () => size,
  failure: () => null,
  changed: () => new Promise(() => undefined),
});

export class ClientGone extends Error {
  constructor() {
    super('client closed the connection');
    this.name = 'ClientGone';
  }
}

export async function sendFileBytes(
  fh: FileHandle,
  res: ServerResponse,
  start: number,
  end: number,
  source: ByteSource,
  sizer: ReadSizer,
): Promise<void> {
  // One wake-up slot, not a promise per chunk: a 1 GB download makes ~16k writes.
  let wake: (() => void) | null = null;
  let closed = false;
  const onClose = () => {
    closed = true;
    wake?.();
  };
  res.once('close', onClose);
  sizer.enter();
  const slabs: Buffer[] = [];
  let writing = false;
  try {
    let pos = start;
    while (pos < end) {
      if (closed || res.destroyed) throw new ClientGone();
      const avail = Math.min(source.available(), end);
      if (pos >= avail) {
        const err = source.failure();
        if (err) throw err;
        await new Promise<void>((resolve) => {
          wake = resolve;
          void source.changed().then(resolve);
        });
        wake = null;
        continue;
      }
      const want = Math.min(sizer.current(), avail - pos);
      sizer.slabs(slabs);
      const parts = toRead(slabs, want);
      const bytesRead = parts.length === 1 ? (await fh.read(parts[0], 0, want, pos)).bytesRead : (await fh.readv(parts, pos)).bytesRead;
      if (bytesRead === 0) throw new Error(`file ended at ${pos}, expected ${end}`);
      // Resolves once the socket has taken the chunk, so the buffer can be reused; a
      // destroyed socket may never call back, so the close answers then.
      writing = true;
      await new Promise<void>((resolve, reject) => {
        wake = () => reject(new ClientGone());
        // Corked, the slabs leave in one writev; the last callback means all were taken.
        res.cork();
        let left = bytesRead;
        for (const part of parts) {
          if (left <= 0) break;
          const piece = part.length <= left ? part : part.subarray(0, left);
          left -= piece.length;
          res.write(piece, left <= 0 ? (err) => (err ? reject(new ClientGone()) : resolve()) : undefined);
        }
        res.uncork();
      });
      writing = false;
      wake = null;
      pos += bytesRead;
    }
  } finally {
    sizer.leave();
    // Only slabs the socket has finished with may be lent again.
    if (!writing) sizer.giveBack(slabs);
    res.off('close', onClose);
  }
}

/** The slabs (the last one cut) that hold exactly `bytes`. */
function toRead(slabs: Buffer[], bytes: number): Buffer[] {
  const parts: Buffer[] = [];
  for (const s of slabs) {
    if (bytes <= 0) break;
    parts.push(s.length <= bytes ? s : s.subarray(0, bytes));
    bytes -= s.length;
  }
  return parts;
}
