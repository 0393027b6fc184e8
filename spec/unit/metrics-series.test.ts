// The metric series are bounded by their label values, never by the devices: 100,000 devices,
// each with its own odd method, serial and cache entry, add no series after the first few.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cacheMetrics, countRequest, metricsRegistry, mtlsMetrics } from '../../lib/observe/metrics';

const series = async (): Promise<number> =>
  (await metricsRegistry.metrics()).split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;

function device(i: number): void {
  countRequest(`M${i}`, 200, 'pass-through', 10);
  countRequest('GET', 200 + (i % 2) * 304, 'deployments-next-v2', 10);
  mtlsMetrics.refused(`client certificate serial ${i.toString(16).toUpperCase()} is blocklisted`);
  mtlsMetrics.closed(`client certificate serial ${i.toString(16).toUpperCase()} is revoked by the CA's CRL`);
  cacheMetrics.hit(`entry-${i}`);
}

test('100,000 devices add no metric series after the first few', async () => {
  for (let i = 0; i < 10; i++) device(i);
  const first = await series();
  for (let i = 10; i < 100_000; i++) device(i);
  assert.equal(await series(), first);
  assert.match(
    await metricsRegistry.metrics(),
    /^mender_gateway_http_requests_total\{method="OTHER",code="200",route="pass-through"\} 100000$/m,
  );
});
