import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkS3Config } from '../../lib/cache/shared/s3-presigner';
import type { ArtifactsCacheS3Config } from '../../lib/config/types';

// ArtifactsCache.S3: what start-up refuses, one line naming the key.

const ok: ArtifactsCacheS3Config = {
  Enabled: true,
  Endpoint: 'http://127.0.0.1:9000',
  Bucket: 'cache',
  Region: 'us-east-1',
  AccessKeyID: 'AK',
  SecretAccessKey: 'SK',
  Prefix: 'gw/',
};

const cases: [string, Partial<ArtifactsCacheS3Config>, RegExp | null][] = [
  ['complete', {}, null],
  ['empty prefix is the bucket root', { Prefix: '' }, null],
  ['no endpoint', { Endpoint: '' }, /^Features\.ArtifactsProxy\.ArtifactsCache\.S3\.Endpoint: required when S3 is enabled, got nothing$/],
  ['no bucket', { Bucket: '' }, /S3\.Bucket: required/],
  ['no region', { Region: '' }, /S3\.Region: required .*costs a request per call/],
  ['no access key', { AccessKeyID: '' }, /S3\.AccessKeyID: required .*ARTIFACTS_PROXY_CACHE_S3_ACCESS_KEY_ID/],
  ['no secret key', { SecretAccessKey: '' }, /S3\.SecretAccessKey: required .*ARTIFACTS_PROXY_CACHE_S3_SECRET_ACCESS_KEY/],
];

for (const [name, change, error] of cases) {
  test(`S3 config: ${name}`, () => {
    const run = () => checkS3Config({ ...ok, ...change });
    if (error === null) assert.doesNotThrow(run);
    else assert.throws(run, (err: Error) => error.test(err.message) && !err.message.includes('\n') && !err.message.includes('SK'));
  });
}
