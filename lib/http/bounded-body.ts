import type { IncomingMessage } from 'node:http';
import { PassThrough, Readable } from 'node:stream';
import { GatewayError } from './gateway-error';
import type { RequestContext } from './route';

// A small request body read into memory with a cap, two ways: refused past the cap (an auth
// request the gateway must parse), or handed back whole as a stream past the cap (a report or
// an inventory upload the gateway forwards untouched when it is too large to look at).

// Refused past the cap with 413: Content-Length is checked first, then the bytes are counted
// (an auth request is well under 4 KiB even with an RSA-4096 key). A refused body is not
// drained: the connection is closed after the answer.

const tooLargeError = (maxBytes: number) =>
  new GatewayError('PAYLOAD_TOO_LARGE', `request body larger than ${maxBytes} bytes`, { headers: { Connection: 'close' } });

export function readBoundedBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const tooLarge = () => tooLargeError(maxBytes);
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > maxBytes) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        req.off('data', onData);
        req.pause();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', (err) => reject(new GatewayError('BAD_REQUEST', 'request body could not be read', { cause: err })));
    req.once('aborted', () => reject(new GatewayError('BAD_REQUEST', 'request body cut short')));
  });
}

// Handed back past the cap without losing a byte: the bytes read so far are put back in front
// of the rest, so the body can still be forwarded untouched. Chunked bodies from the real client
// carry no Content-Length, so the cap is counted, not just checked.

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

// A wrapper that read the body already leaves it in ctx.body (lib/http/route.ts): a Buffer when
// it was small enough to look at, a stream (every byte) when it was not. Whoever comes next reads
// it from there.

/**
 * The body, as a wrapper before this one read it, else read here with the cap. Past the cap, a
 * caller passing the body on keeps ctx.body when it is set (`ctx.body ??= read.stream`): a Buffer
 * goes upstream with its own length, not the device's.
 */
export function readRequestBody(req: IncomingMessage, ctx: RequestContext, maxBytes: number): Promise<BoundedBody> {
  const given = ctx.body;
  if (Buffer.isBuffer(given))
    return Promise.resolve(
      given.length <= maxBytes ? { kind: 'complete', body: given } : { kind: 'too-large', stream: Readable.from([given]) },
    );
  if (given) return Promise.resolve({ kind: 'too-large', stream: given });
  return readBounded(req, maxBytes);
}

/**
 * readRequestBody for a wrapper: undefined when the device left before its body was complete
 * (logged at debug as a 499: nothing to answer, nothing to pass on).
 */
export async function readBodyUnlessLeft(
  req: IncomingMessage,
  ctx: RequestContext,
  maxBytes: number,
  what: string,
): Promise<BoundedBody | undefined> {
  try {
    return await readRequestBody(req, ctx, maxBytes);
  } catch (err) {
    ctx.log.debug(`device left while sending its ${what}`, { err: err as Error, status: 499 });
    return undefined;
  }
}

/** The body whole, or 413: as readBoundedBody, from ctx.body when a wrapper read it already. */
export function readRequestBodyOrRefuse(req: IncomingMessage, ctx: RequestContext, maxBytes: number): Promise<Buffer> {
  const given = ctx.body;
  if (given === undefined) return readBoundedBody(req, maxBytes);
  if (Buffer.isBuffer(given) && given.length <= maxBytes) return Promise.resolve(given);
  return Promise.reject(tooLargeError(maxBytes));
}
