import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { startScriptedDevice, type ScriptedDevice } from '../../fixtures/demo/scripted-device';
import type { MenderServer } from '../../fixtures/mender-server';
import { AUTH, INVENTORY, NEXT } from '../../spec/support/device-api-paths';
import { authBodySignedBy } from '../../spec/support/mtls-device';

// A few minutes of device traffic through one gateway, scripted so that every panel of the
// dashboard has something to show: devices polling, two deployments of one artifact (a cache
// fill, then hits), an upstream outage during which reports are journaled and polls fail, the
// journal's replay when the server is back, and a deployment of a second artifact that pushes the
// first out of a small cache (an eviction of an entry served minutes ago: a hot one).

const print = (line: string): void => void process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const DEVICE_TYPE = 'test-device';
export const ARTIFACT_BYTES = 3 * 1024 * 1024;
/** Holds one artifact, not two: the second artifact's fill evicts the first. */
export const CACHE_MAX_SIZE = 5 * 1024 * 1024;
/** The upstream outage, as fractions of the script's length. */
export const OUTAGE = { from: 0.37, to: 0.55 };

/** A device that reports: inventory every cycle, and a deployment's statuses one per cycle (the
 * ones that fall in the outage wait in the journal). Its token is known good: upstream issued it. */
class Reporter {
  private token = '';
  private deployment: { id: string; step: number } | undefined;
  private readonly key: KeyObject = generateKeyPairSync('ed25519').privateKey;
  deviceId = '';

  constructor(
    private readonly base: string,
    readonly serial: string,
  ) {}

  private call(
    method: string,
    path: string,
    body?: string | Buffer,
    extra: Record<string, string> = {},
  ): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = this.token ? { Authorization: `Bearer ${this.token}` } : {};
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      const req = http.request(`${this.base}${path}`, { method, headers: { ...headers, ...extra }, agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  async authenticate(): Promise<void> {
    const auth = authBodySignedBy({ serial: this.serial }, this.key);
    const reply = await this.call('POST', AUTH, auth.raw, { 'X-MEN-Signature': auth.signature });
    if (reply.status !== 200) throw new Error(`reporter ${this.serial}: auth answered ${reply.status}`);
    this.token = reply.body.trim();
    this.deviceId = JSON.parse(Buffer.from(this.token.split('.')[1] ?? '', 'base64url').toString()).sub;
  }

  async cycle(): Promise<void> {
    const inventory = JSON.stringify([
      { name: 'device_type', value: DEVICE_TYPE },
      { name: 'artifact_name', value: 'reporter-1' },
      { name: 'serial', value: this.serial },
      { name: 'uptime', value: String(Math.round(process.uptime())) },
    ]);
    await this.call('PUT', INVENTORY, inventory).catch(() => undefined);
    const statuses = ['downloading', 'installing', 'rebooting', 'success'];
    if (this.deployment && this.deployment.step < statuses.length) {
      const status = statuses[this.deployment.step++];
      await this.call(
        'PUT',
        `/api/devices/v1/deployments/device/deployments/${this.deployment.id}/status`,
        JSON.stringify({ status }),
      ).catch(() => undefined);
      return;
    }
    const next = await this.call('GET', `${NEXT}?artifact_name=reporter-1&device_type=${DEVICE_TYPE}`).catch(() => undefined);
    if (next?.status === 200) this.deployment = { id: (JSON.parse(next.body) as { id: string }).id, step: 0 };
  }
}

export interface TrafficOptions {
  dir: string;
  server: MenderServer;
  /** The gateway's HTTP listener, e.g. http://127.0.0.1:PORT */
  base: string;
  /** Seconds of the whole script (phases are placed as fractions of it). */
  seconds: number;
}

export async function driveTraffic(opts: TrafficOptions): Promise<void> {
  const { server, base, dir } = opts;
  const at = (fraction: number): number => fraction * opts.seconds * 1000;
  const artifacts = ['dashboard-release-1', 'dashboard-release-2'];
  for (const name of artifacts) {
    const file = join(dir, `${name}.mender`);
    writeFileSync(file, randomBytes(ARTIFACT_BYTES));
    await server.uploadArtifact(file, { name, deviceTypes: [DEVICE_TYPE] });
  }
  const devices: ScriptedDevice[] = [];
  const reporters = Array.from({ length: 6 }, (_, i) => new Reporter(base, `reporter-${i}`));
  let stopped = false;
  const t0 = Date.now();
  const timeline = async (): Promise<void> => {
    const idOf = (d: ScriptedDevice): string => server.deviceByIdentity(d.identity)?.id ?? '';
    const step = async (when: number, what: string, fn: () => void | Promise<void>): Promise<void> => {
      await sleep(Math.max(0, t0 + at(when) - Date.now()));
      print(`  ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s  ${what}`);
      await fn();
    };
    await step(0, 'ten scripted devices start polling (every 2 s); six reporters authenticate', async () => {
      for (let i = 0; i < 10; i++) {
        devices.push(startScriptedDevice({ serverUrl: base, mac: `02:00:00:00:0d:${String(i).padStart(2, '0')}`, pollMs: 2000 }));
      }
      for (const r of reporters) await r.authenticate();
    });
    await step(0.1, `deployment of ${artifacts[0]} to five devices (a cache fill, then hits)`, () => {
      server.createDeployment({ name: 'wave 1', artifactName: artifacts[0], devices: devices.slice(0, 5).map(idOf) });
    });
    await step(0.22, `the same artifact to the other five (cache hits only)`, () => {
      server.createDeployment({ name: 'wave 2', artifactName: artifacts[0], devices: devices.slice(5).map(idOf) });
    });
    await step(0.33, 'a deployment for the reporters: their statuses run into the outage', () => {
      server.createDeployment({ name: 'reporters', artifactName: artifacts[0], devices: reporters.map((r) => r.deviceId) });
    });
    await step(OUTAGE.from, 'upstream outage: the Mender server stops', () => server.stop());
    await step(OUTAGE.to, 'the Mender server is back: the journal replays', () => server.start());
    await step(0.65, `deployment of ${artifacts[1]} to five devices (evicts ${artifacts[0]} from the small cache)`, () => {
      server.createDeployment({ name: 'wave 3', artifactName: artifacts[1], devices: devices.slice(0, 5).map(idOf) });
    });
    await step(1, 'end of traffic', () => {
      stopped = true;
    });
  };
  const reporting = async (): Promise<void> => {
    await sleep(2000);
    while (!stopped) {
      await Promise.all(reporters.map((r) => r.cycle()));
      await sleep(3000);
    }
  };
  try {
    await Promise.all([timeline(), reporting()]);
  } finally {
    stopped = true;
    for (const d of devices) d.stop();
  }
  const downloaded = devices.reduce((n, d) => n + d.bytesDownloaded, 0);
  print(`  devices downloaded ${(downloaded / 1e6).toFixed(1)} MB through the gateway`);
}
