// prom-client (~12 MB of RSS) is loaded only when the registry is first used: a gateway with
// Metrics off never loads it, and what was counted before the first scrape is all there.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cacheMetrics, countRequest, metricsRegistry, mtlsMetrics } from '../../lib/observe/metrics';

const promClientLoaded = () => Object.keys(require.cache).some((file) => /node_modules[\\/]prom-client[\\/]/.test(file));

test('counting does not load prom-client; the first scrape does, with every earlier count', async () => {
  countRequest('GET', 200, 'pass-through', 100);
  countRequest('GET', 200, 'pass-through', 50);
  countRequest('BREW', 418, 'pass-through', 10);
  cacheMetrics.fetched(4096);
  cacheMetrics.evicted();
  cacheMetrics.evicted(true);
  mtlsMetrics.refused('certificate has expired');
  assert.equal(promClientLoaded(), false);

  const text = await metricsRegistry.metrics();
  assert.equal(promClientLoaded(), true);
  assert.match(metricsRegistry.contentType, /^text\/plain; version=0\.0\.4/);
  const value = (series: string) =>
    Number(
      text
        .split('\n')
        .find((l) => l.startsWith(`${series} `))
        ?.slice(series.length + 1),
    );
  assert.equal(value('mender_gateway_http_requests_total{method="GET",code="200",route="pass-through"}'), 2);
  assert.equal(value('mender_gateway_http_response_bytes_total{method="GET",code="200",route="pass-through"}'), 150);
  assert.equal(value('mender_gateway_http_requests_total{method="OTHER",code="418",route="pass-through"}'), 1);
  assert.equal(value('mender_gateway_artifact_bytes_fetched_total'), 4096);
  assert.equal(value('mender_gateway_cache_evictions_total'), 2);
  assert.equal(value('mender_gateway_cache_hot_evictions_total'), 1);
  assert.equal(value('mender_gateway_mtls_refusals_total{reason="expired"}'), 1);
  assert.equal(value('mender_gateway_cache_hits_total'), 0, 'a counter never incremented reads 0');

  // Later counts show in the next scrape, not added twice.
  countRequest('GET', 200, 'pass-through', 1);
  const again = await metricsRegistry.metrics();
  assert.match(again, /^mender_gateway_http_requests_total\{method="GET",code="200",route="pass-through"\} 3$/m);
  assert.match(again, /^mender_gateway_artifact_bytes_fetched_total 4096$/m);
});
