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

export async function sendFileBytes(fh: FileHandle, res: ServerResponse, start: number, end: number, source: ByteSource, sizer: ReadSizer): Promise<void> {
  // One wake-up slot, not a promise per chunk: a 1 GB download makes ~16k writes.
  let wake: (() => void) | null = null;
  let closed = false;
  const onClose = () => {
    closed = true;
    wake?.();
  };
  res.once('close', onClose);
  sizer.enter();
  let buf: Buffer | null = null;
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
      const size = sizer.current();
      if (buf === null || buf.length !== size) buf = Buffer.allocUnsafe(size);
      const { bytesRead } = await fh.read(buf, 0, Math.min(size, avail - pos), pos);
      if (bytesRead === 0) throw new Error(`file ended at ${pos}, expected ${end}`);
      const chunk = buf.subarray(0, bytesRead);
      // Resolves once the socket has taken the chunk, so the buffer can be reused; a
      // destroyed socket may never call back, so the close answers then.
      await new Promise<void>((resolve, reject) => {
        wake = () => reject(new ClientGone());
        res.write(chunk, (err) => (err ? reject(new ClientGone()) : resolve()));
      });
      wake = null;
      pos += bytesRead;
    }
  } finally {
    sizer.leave();
    res.off('close', onClose);
  }
}
