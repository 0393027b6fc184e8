import type { IncomingMessage } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';

// Reads a small request body up to a cap without losing a byte: past the cap the bytes read so
// far are put back in front of the rest, so the body can still be forwarded untouched. Chunked
// bodies from the real client carry no Content-Length, so the cap is counted, not just checked.

export type BoundedBody =
  | { kind: 'complete'; body: Buffer }
  /** Over the cap: `stream` replays every byte of the body, read or not. */
  | { kind: 'too-large'; stream: Readable };

export function readBounded(req: IncomingMessage, maxBytes: number): Promise<BoundedBody> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      size += chunk.length;
      if (size <= maxBytes) return;
      cleanup();
      req.pause();
      const replay = new PassThrough();
      for (const c of chunks) replay.write(c);
      req.pipe(replay);
      resolve({ kind: 'too-large', stream: replay });
    };
    const onEnd = (): void => {
      cleanup();
      resolve({ kind: 'complete', body: Buffer.concat(chunks, size) });
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onClose = (): void => {
      if (req.complete) return;
      cleanup();
      reject(new Error('device closed the connection before its body was complete'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}
