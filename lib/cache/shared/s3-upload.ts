import { promises as fsp } from 'node:fs';
import { Readable } from 'node:stream';
import type { Sidecar } from '../store/cache-index';
import { plainMd5Etag } from '../store/cache-key';
import type { Bucket } from './s3-bucket';
import { BucketUnreachable, s3ErrorCode } from './s3-request';

// The origin filler's copy to the bucket, streamed while the fill runs: one PUT
// with the origin's Content-Length (no multipart, so no part buffers and it works on s3rver),
// its body read from the growing tmp file like a following device. The fill's last byte is
// only readable once the entry is verified and published (GrowingFill.available), so the
// bucket object can only complete with verified bytes; the sidecar, the bucket's commit
// point, follows with the verified metadata. A failed fill aborts the PUT: nothing lands.

/** The largest object one PUT can create on S3; larger artifacts are not shared. */
export const MAX_SINGLE_PUT = 5 * 1024 ** 3;
const READ_BYTES = 256 * 1024;
/** The PUT body waits on the origin: its idle timeout must outlast the fill's own resumes. */
const GROWING_PUT_IDLE_MS = 120_000;

/**
 * What the upload reads of a running fill (the fill's FillProgress has this shape); declared
 * here so the shared cache depends on the store only, never on the fill room that calls it.
 */
export interface GrowingFill {
  readonly id: string;
  readonly key: string;
  readonly size: number;
  readonly path: string;
  readonly state: string;
  readonly error: Error | null;
  /** Bytes that may be read now (the last one only once verified and published). */
  available(): number;
  /** Resolves at the next change of `available()` or `state`. */
  changed(): Promise<void>;
}

/** The fill's bytes as they become available, from the fd opened on its tmp file. */
async function* growingBytes(fh: fsp.FileHandle, p: GrowingFill): AsyncGenerator<Buffer> {
  let pos = 0;
  while (pos < p.size) {
    if (p.state === 'failed') throw p.error ?? new Error('the fill failed');
    const end = Math.min(p.available(), pos + READ_BYTES);
    if (end <= pos) {
      await p.changed(); // registered in the same tick as the look: no change is missed
      continue;
    }
    const buf = Buffer.allocUnsafe(end - pos);
    const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
    if (bytesRead === 0) throw new Error('the fill file ended before its length');
    pos += bytesRead;
    yield buf.subarray(0, bytesRead);
  }
}

export interface UploadResult {
  shared: boolean;
  ms: number;
}

/** Upload `p` as it lands; resolves once object and sidecar are in the bucket (or not shared). */
export async function uploadGrowing(
  bucket: Bucket,
  p: GrowingFill,
  verified: Promise<Sidecar | null>,
  signal: AbortSignal,
): Promise<UploadResult> {
  const started = performance.now();
  const fh = await fsp.open(p.path, 'r'); // held open: the rename on publish or an eviction cannot cut it
  try {
    const body = { stream: Readable.from(growingBytes(fh, p)), length: p.size };
    const headers = { 'content-type': 'application/octet-stream' };
    const put = await bucket.send('PUT', bucket.objectKey(p.id), { headers, body, signal, timeoutMs: GROWING_PUT_IDLE_MS });
    if (put.status !== 200) throw new BucketUnreachable(`artifact PUT answered ${put.status} ${s3ErrorCode(put)}`);
    const sidecar = await verified;
    if (!sidecar) return { shared: false, ms: Math.round(performance.now() - started) };
    const etag = plainMd5Etag(put.headers.etag as string | undefined);
    if (etag !== null && etag !== sidecar.md5) throw new Error('the bucket stored other bytes than ours (ETag differs)');
    const meta = await bucket.send('PUT', bucket.sidecarKey(p.id), {
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(JSON.stringify(sidecar)),
    });
    if (meta.status !== 200) throw new BucketUnreachable(`sidecar PUT answered ${meta.status} ${s3ErrorCode(meta)}`);
    return { shared: true, ms: Math.round(performance.now() - started) };
  } finally {
    await fh.close();
  }
}
