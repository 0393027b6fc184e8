import { bucketRequest, type BucketAnswer, type BucketRequest } from './s3-request';
import type { BucketMethod, Presigner } from './s3-presigner';

// Where the shared cache lives in the bucket, mirroring the local layout (cache-layout.ts):
//   <Prefix>v1/objects/<id>        artifact bytes (one PUT, so present means complete)
//   <Prefix>v1/objects/<id>.json   the sidecar, uploaded after the bytes: the commit point
//   <Prefix>v1/locks/<id>          lock object of the gateway filling <id> from the origin
// <id> is the local cache entry id (sha256 of origin host + path), so every gateway agrees.

/** Presigned URLs for our own requests live minutes; a device-facing fill's GET lives an hour. */
const REQUEST_EXPIRY_S = 300;
export const FILL_EXPIRY_S = 3600;

export class Bucket {
  constructor(
    private readonly presigner: Presigner,
    private readonly prefix: string,
    private readonly timeoutMs: number,
  ) {}

  get where(): string {
    return this.presigner.where;
  }

  objectKey = (id: string) => `${this.prefix}v1/objects/${id}`;
  sidecarKey = (id: string) => `${this.prefix}v1/objects/${id}.json`;
  lockKey = (id: string) => `${this.prefix}v1/locks/${id}`;

  async send(
    method: BucketMethod,
    key: string,
    opts: Omit<BucketRequest, 'method' | 'timeoutMs'> & { timeoutMs?: number } = {},
  ): Promise<BucketAnswer> {
    const url = await this.presigner.url(method, key, REQUEST_EXPIRY_S);
    return bucketRequest(url, { timeoutMs: this.timeoutMs, ...opts, method });
  }

  async getUrl(key: string): Promise<URL> {
    return new URL(await this.presigner.url('GET', key, FILL_EXPIRY_S));
  }
}
