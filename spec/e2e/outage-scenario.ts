import assert from 'node:assert/strict';
import type { MenderServer } from '../../fixtures/mender-server';
import { cacheGatewayConfig, e2eScenario, type E2eScenario } from '../support/e2e-scenario';

// The report journal end to end: the scenario of the outage files. Real clients → gateway (HTTPS, artifact
// cache on, report journal on) → emulator, which the tests stop and start; the S3 store (the
// artifact's origin) stays up. Helpers read what reached the emulator.

/** storeBytesPerSecond: the origin's pace, so a download spans the outages wanted. */
export function outageScenario(name: string, workers = 1, storeBytesPerSecond = 1024 * 1024): E2eScenario {
  return e2eScenario({
    dirPrefix: `e2e-${name}-`,
    tls: 'split',
    store: { throttleBytesPerSecond: storeBytesPerSecond },
    server: { autoAccept: true },
    artifact: { name: `e2e-${name}-1`, payloadBytes: 512 * 1024, seed: name },
    gatewayConfig: async (scenario) => {
      const config = await cacheGatewayConfig(scenario);
      const upstream = config.UpstreamServer as Record<string, unknown>;
      return {
        ...config,
        Workers: workers,
        UpstreamServer: { ...upstream, Timeout: '5s' },
        Features: { ...config.Features, ReportJournal: { Enabled: true } },
      };
    },
  });
}

/** A client's log line once its last status of an update was answered (by upstream or the journal). */
export const FINISHED = /update-status-report \[none\] -> idle/;

/** Status PUTs of the deployment the emulator answered, per device. */
export function statusCalls(server: MenderServer, deploymentId: string, deviceId: string): number {
  const path = `/api/devices/v1/deployments/device/deployments/${deploymentId}/status`;
  return server.calls.filter((c) => c.deviceId === deviceId && c.method === 'PUT' && c.path === path && c.status === 204).length;
}

/** Deployment instructions (`next` → 200) the emulator answered this device. */
export function nextServed(server: MenderServer, deviceId: string): boolean {
  return server.calls.some((c) => c.deviceId === deviceId && c.status === 200 && /\/deployments\/device\/deployments\/next/.test(c.path));
}

/**
 * Every device's statuses at the emulator are exactly `expected`, each recorded once: as many
 * status calls answered as statuses recorded (a replayed duplicate would add both).
 */
export function assertStatusesOnce(
  server: MenderServer,
  deploymentId: string,
  deviceIds: string[],
  expected: string[],
  labels: string[],
): void {
  for (const [i, id] of deviceIds.entries()) {
    const got = server.statuses(deploymentId, id);
    assert.deepEqual(got, expected, `statuses of ${labels[i]}`);
    assert.equal(statusCalls(server, deploymentId, id), got.length, `status calls of ${labels[i]} (a duplicate?)`);
  }
}

/** The gateway's journal counters from its log: reports it took while upstream was away. */
export function journaledCount(output: string): number {
  return (output.match(/msg="report journaled"/g) ?? []).length;
}
