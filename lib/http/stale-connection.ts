import type { ClientRequest } from 'node:http';

// A kept-alive connection the far end closed (idle timeout) just as we reused it: the request
// is reset before any answer. Node's docs advise sending it again; AWS SDKs do. Used for
// requests that are safe to repeat: artifact origin GET/HEAD, shared-cache bucket requests.

/** Thrown by a first attempt that met a stale connection; carries the error it would have been. */
export class StaleConnection extends Error {}

/** Whether `err`, before any response, came from reusing a connection the peer had closed. */
export function isStaleReuse(req: ClientRequest, err: unknown): boolean {
  return req.reusedSocket && (err as NodeJS.ErrnoException).code === 'ECONNRESET';
}

/**
 * `send(true)`, and once more (`send(false)`) if it threw StaleConnection. `send(mayRetry)`
 * throws StaleConnection only when mayRetry; on the second attempt it throws its plain error.
 */
export async function onceMoreIfStale<T>(send: (mayRetry: boolean) => Promise<T>): Promise<T> {
  try {
    return await send(true);
  } catch (err) {
    if (!(err instanceof StaleConnection)) throw err;
    return send(false);
  }
}
