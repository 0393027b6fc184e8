import type { ArtifactsCacheS3Config } from '../../config/types';

// The shared cache's only use of the `minio` package: SigV4 presigned URLs. Every
// request to the bucket is then a plain HTTP request of ours (s3-request.ts), so bodies are
// streamed from disk (minio's putObject reads up to partSize into memory) and each request
// has our own timeout. minio is an optional dependency, loaded only when S3 is enabled, and
// the region is given so presigning never asks the server for the bucket's location.

export type BucketMethod = 'GET' | 'HEAD' | 'PUT' | 'DELETE';

export interface Presigner {
  /** A URL for one request on `objectKey` (the full key, prefix included), valid `expirySeconds`. */
  url(method: BucketMethod, objectKey: string, expirySeconds: number): Promise<string>;
  /** For log lines: endpoint and bucket, never credentials. */
  readonly where: string;
}

interface MinioClient {
  presignedUrl(method: string, bucket: string, object: string, expires: number): Promise<string>;
}

/** Check the S3 block; every problem is one line naming the key. */
export function checkS3Config(s3: ArtifactsCacheS3Config): void {
  const key = 'Features.ArtifactsProxy.ArtifactsCache.S3';
  if (s3.Endpoint === '') throw new TypeError(`${key}.Endpoint: required when S3 is enabled, got nothing`);
  if (s3.Bucket === '') throw new TypeError(`${key}.Bucket: required when S3 is enabled, got nothing`);
  if (s3.Region === '')
    throw new TypeError(`${key}.Region: required when S3 is enabled (signing without it costs a request per call), got nothing`);
  // Every request is a presigned one: anonymous buckets would need a different client path.
  if (s3.AccessKeyID === '')
    throw new TypeError(`${key}.AccessKeyID: required when S3 is enabled (or ARTIFACTS_PROXY_CACHE_S3_ACCESS_KEY_ID), got nothing`);
  if (s3.SecretAccessKey === '')
    throw new TypeError(`${key}.SecretAccessKey: required when S3 is enabled (or ARTIFACTS_PROXY_CACHE_S3_SECRET_ACCESS_KEY), got nothing`);
}

function loadMinio(): { Client: new (opts: Record<string, unknown>) => MinioClient } {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('minio') as { Client: new (opts: Record<string, unknown>) => MinioClient };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
    throw new Error(
      'Features.ArtifactsProxy.ArtifactsCache.S3.Enabled: needs the optional npm package minio (npm install minio@8), which is not installed',
    );
  }
}

export function createPresigner(s3: ArtifactsCacheS3Config): Presigner {
  checkS3Config(s3);
  const { Client } = loadMinio();
  const endpoint = new URL(s3.Endpoint);
  const useSSL = endpoint.protocol === 'https:';
  const client = new Client({
    endPoint: endpoint.hostname.replace(/^\[|\]$/g, ''),
    port: endpoint.port === '' ? (useSSL ? 443 : 80) : Number(endpoint.port),
    useSSL,
    accessKey: s3.AccessKeyID,
    secretKey: s3.SecretAccessKey,
    region: s3.Region,
    // Never used for a body here; small anyway so an accidental putObject cannot hold 64 MiB.
    partSize: 5 * 1024 * 1024,
  });
  return {
    where: `${endpoint.origin}/${s3.Bucket}`,
    url: (method, objectKey, expirySeconds) => client.presignedUrl(method, s3.Bucket, objectKey, expirySeconds),
  };
}
