import type { IncomingHttpHeaders } from 'node:http';
import { Writable, type Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { GatewayError } from '../http/gateway-error';

// Reads a deployment-instructions body from upstream, whatever its Content-Encoding,
// into memory with a cap (it is small JSON; an artifact never comes this way). Too large,
// an unknown encoding or a broken compressed stream → 502, never a crash.

export const INSTRUCTIONS_CAP_BYTES = 1024 * 1024;

export async function readInstructions(body: Readable, headers: IncomingHttpHeaders, cap = INSTRUCTIONS_CAP_BYTES): Promise<string> {
  const declared = Number(headers['content-length']);
  if (Number.isFinite(declared) && declared > cap) {
    body.destroy();
    throw tooLarge(cap);
  }
  const stages: (Readable | Transform)[] = [body, ...decodersFor(headers['content-encoding'])];
  const chunks: Buffer[] = [];
  const collect = new BoundedCollector(cap, chunks);
  try {
    await pipeline([...stages, collect]);
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    throw new GatewayError('UPSTREAM_BAD_RESPONSE', 'deployment instructions could not be read from the Mender server', { cause: err });
  }
  return Buffer.concat(chunks).toString('utf8');
}

function decodersFor(header: string | undefined): Transform[] {
  if (!header) return [];
  // Codings are listed in the order applied; undo them last to first.
  const codings = header
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
  return codings.reverse().map((coding) => {
    switch (coding) {
      case 'gzip':
      case 'x-gzip':
        return zlib.createGunzip();
      case 'deflate':
        return zlib.createInflate();
      case 'br':
        return zlib.createBrotliDecompress();
      default:
        throw new GatewayError('UPSTREAM_BAD_RESPONSE', `deployment instructions use an unsupported Content-Encoding: ${coding}`);
    }
  });
}

class BoundedCollector extends Writable {
  private total = 0;
  constructor(
    private readonly cap: number,
    private readonly chunks: Buffer[],
  ) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.total += chunk.length;
    if (this.total > this.cap) {
      done(tooLarge(this.cap));
      return;
    }
    this.chunks.push(chunk);
    done();
  }
}

function tooLarge(cap: number): GatewayError {
  return new GatewayError('UPSTREAM_BAD_RESPONSE', `deployment instructions from the Mender server exceed ${cap} bytes`);
}
