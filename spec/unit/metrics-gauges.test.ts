import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ACTIVE_DEVICE_MS, journalMetrics, metricsRegistry } from '../../lib/observe/metrics';
import { statusBoard } from '../../lib/observe/status-page/status-board';

// The two gauges the alert rules and the dashboard read beside the counters:
// mender_gateway_upstream_up ("uplink down for long") and mender_gateway_devices_active.

async function gauge(name: string): Promise<number> {
  const line = (await metricsRegistry.metrics()).split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.slice(name.length + 1) ?? Number.NaN);
}

const idle = { queued: 0, bytes: 0, devices: 0, journaled: 0, replayed: 0, failed: 0, superseded: 0 };

test('upstream_up: 1 before any answer, 0 after a 502 or 504 until upstream answers, 0 while the journal holds it down', async () => {
  assert.equal(await gauge('mender_gateway_upstream_up'), 1, 'no device yet: not an outage');
  const t = Date.now();
  statusBoard.upstreamAnswered(502, t);
  assert.equal(await gauge('mender_gateway_upstream_up'), 0);
  statusBoard.upstreamAnswered(404, t + 1); // an answer, even a refusal, is upstream reachable
  assert.equal(await gauge('mender_gateway_upstream_up'), 1);
  statusBoard.upstreamAnswered(504, t + 2);
  assert.equal(await gauge('mender_gateway_upstream_up'), 0);
  statusBoard.upstreamAnswered(200, t + 3);
  assert.equal(await gauge('mender_gateway_upstream_up'), 1);

  let down = true;
  journalMetrics.watch(() => ({ ...idle, upstreamDown: down }));
  assert.equal(await gauge('mender_gateway_upstream_up'), 0, 'the replay found it unreachable before any device did');
  down = false;
  assert.equal(await gauge('mender_gateway_upstream_up'), 1);
});

test('devices_active counts the devices seen within the hour, each once', async () => {
  // The hour itself is on the board's monotonic clock: spec/unit/clock-step-waits.test.ts.
  const before = await gauge('mender_gateway_devices_active');
  for (let i = 0; i < 3; i++) statusBoard.deviceSeen(`gauge-new-${i}`, '192.0.2.2', 'GET /x');
  assert.equal(await gauge('mender_gateway_devices_active'), before + 3);
  statusBoard.deviceSeen('gauge-new-0', '192.0.2.2', 'GET /y');
  assert.equal(await gauge('mender_gateway_devices_active'), before + 3, 'a device seen again is still one');
  assert.equal(await gauge('mender_gateway_devices_active'), statusBoard.seenWithin(ACTIVE_DEVICE_MS));
});
