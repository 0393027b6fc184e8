import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMenderServer, type MenderServer, type MenderServerOptions } from '../../fixtures/mender-server';
import { startS3Store, type S3Store, type S3StoreOptions } from '../../fixtures/s3-store';
import { startClient5Fleet, type Client5Fleet, type Client5Options } from './client5-fleet';
import type { FleetDeployment } from './fleet-deployment';
import { startGateway, writeGatewayConfig, type GatewayProcess } from './gateway-process';
import { closeServer, listenOnFreePort } from './listen';
import { makeArtifact, type Artifact, type ArtifactOptions } from './make-artifact';
import { startFleet, type Fleet, type FleetOptions } from './real-clients';
import { makeTlsMaterial, type TlsMaterial } from './tls-material';

// The scenario every e2e file starts from: a temp dir, TLS material, the S3 store, the emulator
// with one artifact uploaded, and (unless the file tests the direct path) the gateway as a child
// process with the file's config. Made once at module level; start() in before(), stop() in
// after(). Each part is kept as soon as it exists, so a start that fails half-way is still
// cleaned up by stop(), in the order: fleets, gateway, the file's own servers, emulator, store,
// temp dir; then the gateway's exit code on SIGTERM, if it started.

/**
 * A gateway on HTTPS with the artifact proxy and cache on, trusting only the emulator's CA, for
 * files whose scenario is 'split'. GatewayURL must name the listener's port before the gateway
 * starts, so a free one is taken.
 */
export async function cacheGatewayConfig({
  dir,
  gatewayTls,
  upstreamTls,
  server,
  store,
}: E2eScenario): Promise<Record<string, unknown> & { Features: Record<string, unknown> }> {
  const probe = net.createServer();
  const port = await listenOnFreePort(probe);
  await closeServer(probe);
  return {
    HTTPS: { Enabled: true, Listen: `127.0.0.1:${port}`, ServerCertificate: gatewayTls.server.cert, ServerKey: gatewayTls.server.key },
    HTTP: { Enabled: false },
    UpstreamServer: { URL: server.url, CACertificate: upstreamTls.ca.cert },
    Features: {
      ArtifactsProxy: {
        Enabled: true,
        GatewayURL: `https://127.0.0.1:${port}`,
        DomainWhitelist: [store.host],
        ArtifactsCache: { Enabled: true, Path: join(dir, 'cache') },
      },
    },
  };
}

/**
 * The mTLS listener alone (HTTPS with Features.mTLS, the artifact proxy off) in front of the
 * emulator, admitting certificates of the gateway's CA with `user`'s management login.
 */
export function mtlsGatewayConfig(
  { gatewayTls: tls, server }: E2eScenario,
  user: { email: string; password: string },
  blocklist = '',
): Record<string, unknown> {
  return {
    HTTPS: { Enabled: true, Listen: '127.0.0.1:0', ServerCertificate: tls.server.cert, ServerKey: tls.server.key },
    HTTP: { Enabled: false },
    UpstreamServer: { URL: server.url },
    Features: {
      ArtifactsProxy: { Enabled: false },
      mTLS: {
        Enabled: true,
        CACertificate: tls.ca.cert,
        BlacklistPath: blocklist,
        MenderUsername: user.email,
        MenderPassword: user.password,
      },
    },
  };
}

export const EXPECTED_STATUSES = ['downloading', 'downloading', 'downloading', 'installing', 'installing', 'success'];

export interface ScenarioOptions {
  /** temp dir prefix, e.g. 'e2e-gateway-' */
  dirPrefix: string;
  /**
   * 'split': two unrelated CAs; the devices can only trust the gateway, the gateway only the
   * emulator. 'shared': one CA (dir 'tls-') for everything that uses TLS.
   */
  tls: 'split' | 'shared';
  /** The emulator listens on HTTPS with the upstream server certificate. Default true. */
  emulatorTls?: boolean;
  store?: S3StoreOptions;
  server: Omit<MenderServerOptions, 'store' | 'tls'>;
  artifact: Omit<ArtifactOptions, 'dir'>;
  /** The gateway's config, made once the artifact is uploaded; none: no gateway (direct mode). */
  gatewayConfig?: (s: E2eScenario) => Record<string, unknown> | Promise<Record<string, unknown>>;
  /** Default 'debug': secrets must stay out of the log at every level. */
  logLevel?: string;
  /** Runs in stop() after the gateway has exited, before the emulator closes (the file's relays). */
  afterGatewayStop?: () => Promise<void> | void;
}

export interface E2eScenario {
  readonly dir: string;
  readonly upstreamTls: TlsMaterial;
  /** The same object as upstreamTls with tls 'shared'. */
  readonly gatewayTls: TlsMaterial;
  readonly store: S3Store;
  readonly server: MenderServer;
  readonly artifact: Artifact;
  readonly gateway: GatewayProcess;
  start(): Promise<void>;
  /** A fleet pointed at the gateway's HTTPS listener (or the emulator in direct mode); stop() stops it. */
  startFleet(opts: Omit<FleetOptions, 'serverUrl' | 'serverCertificate'>): Promise<Fleet>;
  /** The same with Mender client 5.1 devices (client5-fleet.ts); stop() stops it too. */
  startClient5Fleet(opts: Omit<Client5Options, 'serverUrl' | 'ca'>): Promise<Client5Fleet>;
  stop(): Promise<void>;
}

export function e2eScenario(opts: ScenarioOptions): E2eScenario {
  let dir: string | undefined;
  let upstreamTls: TlsMaterial | undefined;
  let gatewayTls: TlsMaterial | undefined;
  let store: S3Store | undefined;
  let server: MenderServer | undefined;
  let artifact: Artifact | undefined;
  let gateway: GatewayProcess | undefined;
  const fleets: { stop(): Promise<void> }[] = [];
  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`e2e scenario: no ${what} (start() has not got that far)`);
    return value;
  };

  const scenario: E2eScenario = {
    get dir() {
      return started(dir, 'temp dir');
    },
    get upstreamTls() {
      return started(upstreamTls, 'upstream TLS material');
    },
    get gatewayTls() {
      return started(gatewayTls, 'gateway TLS material');
    },
    get store() {
      return started(store, 'store');
    },
    get server() {
      return started(server, 'emulator');
    },
    get artifact() {
      return started(artifact, 'artifact');
    },
    get gateway() {
      return started(gateway, 'gateway');
    },

    async start() {
      dir = mkdtempSync(join(tmpdir(), opts.dirPrefix));
      if (opts.tls === 'split') {
        upstreamTls = makeTlsMaterial(mkdtempSync(join(dir, 'upstream-tls-')));
        gatewayTls = makeTlsMaterial(mkdtempSync(join(dir, 'gateway-tls-')));
      } else {
        upstreamTls = gatewayTls = makeTlsMaterial(mkdtempSync(join(dir, 'tls-')));
      }
      store = await startS3Store(opts.store);
      const tls = opts.emulatorTls === false ? {} : { tls: upstreamTls.server };
      server = await startMenderServer({ store, ...tls, ...opts.server });
      artifact = await makeArtifact({ dir, ...opts.artifact });
      await server.uploadArtifact(artifact.path, { name: artifact.name, deviceTypes: [artifact.deviceType] });
      if (!opts.gatewayConfig) return;
      const configFile = writeGatewayConfig(dir, await opts.gatewayConfig(scenario));
      gateway = await startGateway({ configFile, logLevel: opts.logLevel ?? 'debug' });
    },

    async startFleet(fleetOpts) {
      const fleet = await startFleet(
        gateway
          ? { ...fleetOpts, serverUrl: gateway.url('https'), serverCertificate: scenario.gatewayTls.ca.cert }
          : { ...fleetOpts, serverUrl: scenario.server.url, serverCertificate: scenario.upstreamTls.ca.cert },
      );
      fleets.push(fleet);
      return fleet;
    },

    async startClient5Fleet(fleetOpts) {
      const fleet = await startClient5Fleet(
        gateway
          ? { ...fleetOpts, serverUrl: gateway.url('https'), ca: scenario.gatewayTls.ca.cert }
          : { ...fleetOpts, serverUrl: scenario.server.url, ca: scenario.upstreamTls.ca.cert },
      );
      fleets.push(fleet);
      return fleet;
    },

    async stop() {
      for (const fleet of fleets) await fleet.stop();
      const code = await gateway?.stop();
      await opts.afterGatewayStop?.();
      await server?.close();
      await store?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
      if (gateway) assert.equal(code, 0, `gateway exit code on SIGTERM\n${gateway.output().slice(-2000)}`);
    },
  };
  return scenario;
}

/** What assertFleetCompleted reads of a device: 3.4 (RealClient) and 5.1 (Client5) both fit. */
export interface CompletedDevice {
  mac: string;
  installedPath(fileName: string): string;
  logTail(lines?: number): string;
}

export interface CompletedOptions<C extends CompletedDevice = CompletedDevice> {
  /** Prefix of the per-device messages; default the client's MAC. */
  label?: (client: C, index: number) => string;
  /** The file's own per-device checks, run after the common ones. */
  alsoPerDevice?: (client: C, deviceId: string, index: number) => void;
  /** The statuses each device must have reported; default EXPECTED_STATUSES (the 3.4 client's). */
  statuses?: readonly string[];
}

/**
 * Every device of the fleet went through the exact status sequence of a successful deployment,
 * is known to the emulator under its own MAC with the test device type, and installed the
 * artifact's payload byte for byte.
 */
export function assertFleetCompleted<C extends CompletedDevice>(
  s: E2eScenario,
  fleet: { clients: readonly C[] },
  run: FleetDeployment,
  opts: CompletedOptions<C> = {},
): void {
  const byId = new Map(s.server.devices().map((d) => [d.id, d]));
  for (const [i, id] of run.deviceIds.entries()) {
    const client = fleet.clients[i]!;
    const label = opts.label?.(client, i) ?? client.mac;
    assert.deepEqual(
      s.server.statuses(run.deploymentId, id),
      opts.statuses ?? EXPECTED_STATUSES,
      `statuses of ${label}\n${client.logTail()}`,
    );
    assert.deepEqual(byId.get(id)?.identity, { mac: client.mac }, `identity of ${label}`);
    assert.equal(byId.get(id)?.inventory.device_type, 'test-device', `inventory of ${label}`);
    const installed = createHash('sha256')
      .update(readFileSync(client.installedPath(s.artifact.payloadName)))
      .digest('hex');
    assert.equal(installed, s.artifact.payloadSha256, `payload installed by ${label}`);
    opts.alsoPerDevice?.(client, id, i);
  }
}
