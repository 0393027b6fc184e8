import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import WebSocket from 'ws';
import type { MenderServer } from '../../../fixtures/mender-server';
import { decodeProtoMsg, encodeProtoMsg, PROTO_CONTROL } from '../../../fixtures/mender-server/protomsg';
import type { DeviceCert } from '../device-certs';
import { AUTH, CONNECT, INVENTORY, NEXT, NEXT_V2 } from '../device-api-paths';
import { authBodySignedBy } from '../mtls-device';

// The devices of a soak: scripted, as the 3.4 and 5.1 clients speak (device-protocol.md), many
// at a time. Every visit is a new identity (its own ed25519 key): the site's fleet rotating
// through. A visit authenticates, polls `next` (v1 GET or v2 POST), PUTs its inventory, and,
// for the share of devices given a deployment, downloads the artifact through the gateway's
// link (whole, or in two ranges as a client resuming) and reports downloading, installing and
// success (or a log and failure); a share opens a deviceconnect WebSocket and trades a ping.
// Some visits come over HTTPS with a client certificate (mTLS), the others over plain HTTP.
// Every answer is counted; every failure is kept with its time, for the plan to judge.

export const DEVICE_TYPE = 'soak-box';
export const INSTALLED = 'soak-base';

export interface SoakArtifact {
  name: string;
  size: number;
  sha256: string;
}

export interface FleetOptions {
  /** The gateway without mTLS: its plain HTTP and its HTTPS listener. */
  http: string;
  https: string;
  /** The gateway with mTLS: its HTTPS listener (a client certificate required). */
  mtls: string;
  /** The CA file devices trust for the gateways' server certificate. */
  caFile: string;
  /** Client certificates of the mTLS devices (several devices share one, as a batch would). */
  certs: DeviceCert[];
  server: MenderServer;
  /** The artifact a deployment made at `t` seconds offers (the offer rotates: the cache evicts). */
  artifactAt(t: number): SoakArtifact;
  identitiesPerSecond: number;
  lanes: number;
  /** Shares of visits: over mTLS, over HTTPS without a certificate (of the rest), given a
   * deployment, opening deviceconnect. */
  mtlsShare: number;
  httpsShare: number;
  deploymentShare: number;
  connectShare: number;
  /** Seconds since the soak began. */
  now(): number;
}

/** Who made a request: over mTLS or not, and with which certificate. */
export interface Who {
  mtls: boolean;
  serial?: string;
}

export interface Failure {
  t: number;
  what: string;
  outcome: string;
  mtls: boolean;
  /** The client certificate's serial (mTLS). */
  serial?: string;
  /** The answer's `error` (the gateway's JSON body says why), for the failures' CSV. */
  detail?: string;
}

/** One device's reports to one deployment (statuses, and 'log' for a deployment log): those the
 * gateway acknowledged, and those it did not. */
export interface ReportBook {
  deploymentId: string;
  deviceId: string;
  acked: string[];
  unacked: string[];
}

interface Reply {
  status: number;
  body: Buffer;
  headers: http.IncomingHttpHeaders;
}

const TIMEOUT_MS = 30_000;

function call(
  url: string,
  agent: http.Agent,
  method: string,
  headers: Record<string, string>,
  body?: string | Buffer,
  sink?: (chunk: Buffer) => void,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const request = (url.startsWith('https:') ? https : http).request(url, { method, agent, headers, timeout: TIMEOUT_MS });
    request.on('timeout', () => request.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    request.on('error', reject);
    request.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => (sink && res.statusCode! < 300 ? sink(c) : chunks.push(c)));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
      res.on('error', reject);
      res.on('aborted', () => reject(Object.assign(new Error('aborted'), { code: 'ABORTED' })));
    });
    request.end(body);
  });
}

const failureCode = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? (err as Error).message.slice(0, 40);

/** A device's session: its token, renewed once on a 401 (the token expired: short lifetimes). */
class Visit {
  token = '';
  deviceId = '';
  constructor(
    readonly fleet: SoakFleet,
    readonly base: string,
    readonly agent: http.Agent,
    readonly identity: Record<string, string>,
    readonly key: KeyObject,
    readonly who: Who,
  ) {}

  get mtls(): boolean {
    return this.who.mtls;
  }

  async auth(): Promise<boolean> {
    const body = authBodySignedBy(this.identity, this.key);
    const r = await this.fleet.attempt('auth', this.who, () =>
      call(`${this.base}${AUTH}`, this.agent, 'POST', { 'Content-Type': 'application/json', 'X-MEN-Signature': body.signature }, body.raw),
    );
    if (r?.status !== 200) return this.fleet.judge('auth', this.who, r, [200]);
    this.token = r.body.toString();
    this.deviceId = JSON.parse(Buffer.from(this.token.split('.')[1] ?? '', 'base64url').toString()).sub;
    return true;
  }

  /** A call with the device's token; a 401 means it expired: authenticate again and retry once. */
  async authorized(
    what: string,
    url: string,
    method: string,
    json?: unknown,
    extra: Record<string, string> = {},
    sink?: (c: Buffer) => void,
  ) {
    for (let round = 0; round < 2; round++) {
      const headers: Record<string, string> = { Authorization: `Bearer ${this.token}`, ...extra };
      if (json !== undefined) headers['Content-Type'] = 'application/json';
      const r = await this.fleet.attempt(what, this.who, () =>
        call(url, this.agent, method, headers, json === undefined ? undefined : JSON.stringify(json), sink),
      );
      if (r?.status === 401 && round === 0) {
        this.fleet.count(`${what} 401 (token renewed)`);
        if (!(await this.auth())) return undefined;
        continue;
      }
      return r;
    }
  }
}

export class SoakFleet {
  identities = 0;
  requests = 0;
  readonly outcomes = new Map<string, number>();
  readonly failures: Failure[] = [];
  readonly reports = new Map<string, ReportBook>();
  /** Device id → the serial its acknowledged inventory carried (the server must hold it). */
  readonly inventories = new Map<string, string>();
  /** Serials whose certificates are refused (blocklist, CRL): a visit with one expects a refusal. */
  readonly refusedSerials = new Set<string>();
  private stopped = false;
  private ticket = 0;
  private readonly started: number;
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: 1024 });
  private readonly httpsAgent: https.Agent;
  private readonly certAgents: https.Agent[];

  constructor(private readonly opts: FleetOptions) {
    this.started = opts.now();
    // One agent per certificate, shared by the devices holding it: TLS sessions are resumed
    // (tickets), as a device reconnecting would, across the gateway's ticket-key rotations.
    this.httpsAgent = new https.Agent({ ca: readFileSync(opts.caFile), keepAlive: true, maxSockets: 1024 });
    this.certAgents = opts.certs.map(
      (c) => new https.Agent({ ca: readFileSync(opts.caFile), cert: readFileSync(c.chain), key: readFileSync(c.key), keepAlive: false }),
    );
  }

  count(outcome: string): void {
    this.outcomes.set(outcome, (this.outcomes.get(outcome) ?? 0) + 1);
  }

  async attempt(what: string, who: Who, send: () => Promise<Reply>): Promise<Reply | undefined> {
    this.requests++;
    try {
      return await send();
    } catch (err) {
      this.fail(what, failureCode(err), who);
      return undefined;
    }
  }

  fail(what: string, outcome: string, who: Who, body?: Buffer): void {
    this.count(`${what} ${outcome}`);
    let detail: string | undefined;
    try {
      detail = body?.length ? String(JSON.parse(body.toString()).error ?? '').slice(0, 120) : undefined;
    } catch {
      detail = body?.subarray(0, 80).toString();
    }
    this.failures.push({ t: this.opts.now(), what, outcome, mtls: who.mtls, serial: who.serial, detail });
  }

  /** Count an answer; false (and a failure kept) unless its status is one of `ok`. */
  judge(what: string, who: Who, r: Reply | undefined, ok: number[]): false {
    if (r && ok.includes(r.status)) this.count(`${what} ${r.status}`);
    else if (r) this.fail(what, String(r.status), who, r.body);
    return false;
  }

  private ok(what: string, r: Reply | undefined, ok: number[], who: Who): r is Reply {
    if (r && ok.includes(r.status)) {
      this.count(`${what} ${r.status}`);
      return true;
    }
    if (r) this.fail(what, String(r.status), who, r.body);
    return false;
  }

  /** Run lanes until stop(): visits started at the planned rate (later when the lanes are busy). */
  async run(): Promise<void> {
    const lane = async (): Promise<void> => {
      while (!this.stopped) {
        const n = this.ticket++;
        const due = this.started + n / this.opts.identitiesPerSecond;
        const wait = (due - this.opts.now()) * 1000;
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        if (this.stopped) return;
        await this.visit(n).catch((err) => this.fail('visit', `threw ${String(err).slice(0, 80)}`, { mtls: false }));
      }
    };
    await Promise.all(Array.from({ length: this.opts.lanes }, lane));
  }

  stop(): void {
    this.stopped = true;
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
    for (const a of this.certAgents) a.destroy();
  }

  private async visit(n: number): Promise<void> {
    this.identities++;
    const o = this.opts;
    const pick = (share: number, salt: number) => ((n * 2654435761 + salt) % 1000) / 1000 < share;
    const mtls = pick(o.mtlsShare, 1) && o.certs.length > 0;
    const tls = !mtls && pick(o.httpsShare, 4);
    const certIndex = n % Math.max(1, o.certs.length);
    const identity = {
      mac: `02:${[n >> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255, 0x50].map((b) => b.toString(16).padStart(2, '0')).join(':')}`,
      serial: `soak-${n}`,
    };
    const { privateKey } = generateKeyPairSync('ed25519');
    const [base, agent] = mtls ? [o.mtls, this.certAgents[certIndex]] : tls ? [o.https, this.httpsAgent] : [o.http, this.httpAgent];
    const v = new Visit(this, base, agent, identity, privateKey, { mtls, serial: mtls ? o.certs[certIndex].serial : undefined });

    if (mtls && this.refusedSerials.has(o.certs[certIndex].serial)) return this.refusedVisit(v);
    if (!(await v.auth())) return;
    const deployment = pick(o.deploymentShare, 2)
      ? o.server.createDeployment({ name: `soak-${n}`, artifactName: o.artifactAt(o.now()).name, devices: [v.deviceId] })
      : undefined;

    const provides = { artifact_name: INSTALLED, device_type: DEVICE_TYPE };
    const next = await (n % 2
      ? v.authorized('next', `${v.base}${NEXT}?artifact_name=${INSTALLED}&device_type=${DEVICE_TYPE}`, 'GET')
      : v.authorized('next', `${v.base}${NEXT_V2}`, 'POST', { device_provides: provides }));
    if (!this.ok('next', next, [200, 204], v.who)) return;

    const inventory = await v.authorized('inventory', `${v.base}${INVENTORY}`, 'PUT', [
      { name: 'device_type', value: DEVICE_TYPE },
      { name: 'artifact_name', value: INSTALLED },
      { name: 'serial', value: identity.serial },
      { name: 'mender_client_version', value: n % 2 ? '3.4.0' : '5.1.0' },
    ]);
    if (this.ok('inventory', inventory, [200], v.who)) this.inventories.set(v.deviceId, identity.serial);

    if (next.status === 200 && deployment) await this.update(v, JSON.parse(next.body.toString()), n);
    if (pick(o.connectShare, 3)) await this.connect(v);
  }

  /** A device whose certificate is blocklisted or revoked: its request must be refused. */
  private async refusedVisit(v: Visit): Promise<void> {
    const body = authBodySignedBy(v.identity, v.key);
    this.requests++;
    try {
      const r = await call(
        `${v.base}${AUTH}`,
        v.agent,
        'POST',
        { 'Content-Type': 'application/json', 'X-MEN-Signature': body.signature },
        body.raw,
      );
      if (r.status === 401 || r.status === 403) this.count(`refused certificate ${r.status}`);
      else this.fail('refused certificate', `admitted with ${r.status}`, v.who);
    } catch (err) {
      this.count(`refused certificate ${failureCode(err)}`);
    }
  }

  private book(deploymentId: string, deviceId: string): ReportBook {
    const key = `${deploymentId}/${deviceId}`;
    const known = this.reports.get(key);
    if (known) return known;
    const b: ReportBook = { deploymentId, deviceId, acked: [], unacked: [] };
    this.reports.set(key, b);
    return b;
  }

  private async status(v: Visit, deploymentId: string, status: string): Promise<void> {
    const r = await v.authorized('status', `${v.base}/api/devices/v1/deployments/device/deployments/${deploymentId}/status`, 'PUT', {
      status,
    });
    const book = this.book(deploymentId, v.deviceId);
    if (this.ok('status', r, [204], v.who)) book.acked.push(status);
    else book.unacked.push(status);
  }

  private async update(v: Visit, instruction: { id: string; artifact: { source: { uri: string } } }, n: number): Promise<void> {
    const id = instruction.id;
    const artifact = this.artifactNamed(instruction);
    await this.status(v, id, 'downloading');
    const link = instruction.artifact.source.uri;
    // The artifact proxy's whole point: the link is the gateway's own (its GatewayURL, the HTTPS
    // listener), never the origin's.
    if (!link.startsWith(`${v.mtls ? this.opts.mtls : this.opts.https}/`)) {
      this.fail('download', 'link not rewritten', v.who);
      return this.status(v, id, 'failure');
    }
    const hash = createHash('sha256');
    let bytes = 0;
    const sink = (c: Buffer): void => {
      hash.update(c);
      bytes += c.length;
    };
    // The link is the gateway's own (its GatewayURL): no token on it; over mTLS, the device's certificate.
    const agent = link.startsWith('https:') ? (v.mtls ? v.agent : this.httpsAgent) : this.httpAgent;
    const get = (range?: string) =>
      this.attempt('download', v.who, () => call(link, agent, 'GET', range ? { Range: range } : {}, undefined, sink));
    let whole = false;
    if (n % 4 === 0 && artifact) {
      // A client resuming: the first half, then the rest (3.4 asks `bytes=N-`).
      const half = Math.floor(artifact.size / 2);
      const first = await get(`bytes=0-${half - 1}`);
      if (this.ok('download', first, [206], v.who) && bytes === half)
        whole = this.ok('download', await get(`bytes=${half}-`), [206], v.who);
    } else whole = this.ok('download', await get(), [200], v.who);
    if (!whole) return this.status(v, id, 'failure');
    if (!artifact || bytes !== artifact.size || hash.digest('hex') !== artifact.sha256) {
      this.fail('download', `corrupt (${bytes} bytes)`, v.who);
      return this.status(v, id, 'failure');
    }
    await this.status(v, id, 'installing');
    if (n % 10 === 0) {
      const log = await v.authorized('log', `${v.base}/api/devices/v1/deployments/device/deployments/${id}/log`, 'PUT', {
        messages: [{ timestamp: new Date().toISOString(), level: 'error', message: `soak device ${n}: scripted failure` }],
      });
      // Kept in the report book beside the statuses: a log must arrive exactly once too.
      const book = this.book(id, v.deviceId);
      if (this.ok('log', log, [204], v.who)) book.acked.push('log');
      else book.unacked.push('log');
      return this.status(v, id, 'failure');
    }
    await this.status(v, id, 'success');
  }

  private artifactNamed(instruction: unknown): SoakArtifact | undefined {
    const name = (instruction as { artifact?: { artifact_name?: string } }).artifact?.artifact_name;
    return name ? this.artifactsByName.get(name) : undefined;
  }

  readonly artifactsByName = new Map<string, SoakArtifact>();

  /** deviceconnect: the WebSocket opens through the gateway, a control ping gets its pong. */
  private async connect(v: Visit): Promise<void> {
    this.requests++;
    const url = `${v.base.replace(/^http/, 'ws')}${CONNECT}`;
    const outcome = await new Promise<string>((resolve) => {
      const ws = new WebSocket(url, {
        headers: { Authorization: `Bearer ${v.token}` },
        agent: v.agent,
        perMessageDeflate: false,
        handshakeTimeout: 10_000,
      });
      const timer = setTimeout(() => {
        ws.terminate();
        resolve('no pong');
      }, 10_000);
      ws.on('open', () => ws.send(encodeProtoMsg({ hdr: { proto: PROTO_CONTROL, typ: 'ping', sid: '' } })));
      ws.on('message', (data) => {
        if (decodeProtoMsg(data as Buffer)?.hdr.typ !== 'pong') return;
        clearTimeout(timer);
        ws.close();
        resolve('pong');
      });
      ws.on('unexpected-response', (_req, res) => {
        clearTimeout(timer);
        ws.terminate();
        resolve(String(res.statusCode));
      });
      ws.on('error', (err) => {
        clearTimeout(timer);
        resolve(failureCode(err));
      });
    });
    if (outcome === 'pong') this.count('connect pong');
    else this.fail('connect', outcome, v.who);
  }
}
