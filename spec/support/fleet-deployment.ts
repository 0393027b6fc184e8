import type { MenderServer } from '../../fixtures/mender-server';

// One deployment to a running fleet, in the order that keeps a healthy run off the client's
// one-minute retry floor: every device authenticates (auto-accepted) and polls once, then the
// deployment is created and found at the next regular poll (UpdatePollIntervalSeconds), never
// through a retry.

/** What these helpers need of a fleet: 3.4 (real-clients.ts) and 5.1 (client5-fleet.ts) both fit. */
export interface DeviceFleet {
  clients: readonly { identity: { mac: string } }[];
  waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<void>;
}

export interface FleetDeployment {
  deploymentId: string;
  /** device id per client index */
  deviceIds: string[];
  /** ms from creating the deployment until every device reported success */
  elapsedMs: number;
}

export function deviceIdsOf(fleet: DeviceFleet, server: MenderServer): (string | undefined)[] {
  return fleet.clients.map((c) => server.deviceByIdentity(c.identity)?.id);
}

/** Wait until every client is known to the server, accepted, and has asked for a deployment. */
export async function waitForFleetOnline(fleet: DeviceFleet, server: MenderServer, timeoutMs: number): Promise<string[]> {
  const polled = (id: string): boolean =>
    server.calls.some((c) => c.deviceId === id && /\/deployments\/device\/deployments\/next/.test(c.path));
  await fleet.waitFor(
    () => {
      const ids = deviceIdsOf(fleet, server);
      if (ids.some((id) => !id)) return false;
      const byId = new Map(server.devices().map((d) => [d.id, d]));
      return ids.every((id) => byId.get(id!)?.status === 'accepted' && polled(id!));
    },
    timeoutMs,
    `all ${fleet.clients.length} devices accepted and polling`,
  );
  return deviceIdsOf(fleet, server) as string[];
}

export async function deployToFleet(
  fleet: DeviceFleet,
  server: MenderServer,
  artifactName: string,
  timeoutMs: number,
): Promise<FleetDeployment> {
  const deviceIds = await waitForFleetOnline(fleet, server, timeoutMs);
  const { id: deploymentId } = server.createDeployment({ name: `e2e-${artifactName}`, artifactName, devices: deviceIds });
  const started = Date.now();
  const last = (id: string): string | undefined => server.statuses(deploymentId, id).at(-1);
  await fleet.waitFor(
    () => deviceIds.every((id) => ['success', 'failure'].includes(last(id) ?? '')),
    timeoutMs,
    `every device to finish deployment ${deploymentId} (${deviceIds.filter((id) => last(id) === 'success').length}/${deviceIds.length} succeeded so far)`,
  );
  return { deploymentId, deviceIds, elapsedMs: Date.now() - started };
}

/** Log lines of the client's backoff states: a healthy run enters none of them. */
export const RETRY_STATES = /authorize-wait|retry-wait|retry-report|report-retry|Resuming download|Cannot resume/;
