import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../http/gateway-error';

// A small request body (an auth request is well under 4 KiB even with an RSA-4096 key), read
// with a cap: Content-Length is checked first, then the bytes are counted (STYLE principle 3).
// A refused body is not drained: the connection is closed after the answer.

export function readBoundedBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const tooLarge = () =>
    new GatewayError('PAYLOAD_TOO_LARGE', `request body larger than ${maxBytes} bytes`, { headers: { Connection: 'close' } });
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
