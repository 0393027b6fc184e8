import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { startMenderServer, type MenderServer } from '../../../fixtures/mender-server';
import { startS3Store, type S3Store } from '../../../fixtures/s3-store';
import { makeCrl, makeDeviceCert } from '../device-certs';
import { freePort } from '../listen';
import { rssBytes } from '../process-stats';
import { makeLeaf, makeTlsMaterial } from '../tls-material';
import { steppedClock } from '../stepped-clock';
import { levelling, plotSvg, probeGateway, type Sample, writeCsv } from './soak-figures';
import { DEVICE_TYPE, type Failure, SoakFleet, type SoakArtifact } from './soak-fleet';
import { SoakGateway } from './soak-gateway';
import { type SoakEvent, soakPlan } from './soak-plan';

// A month of a site, compressed (docs/benchmarks.md "Soak"): one gateway (HTTP and HTTPS with
// mTLS, artifact proxy with a small cache, journal, DeviceSystem, metrics) in front of the Mender
// server emulator and the S3 store, a fleet of scripted devices rotating through, and the plan's
// events (soak-plan.ts). It passes when every judged figure levels off, every report a device
// had acknowledged reached the server exactly once, no request failed outside what the plan
// allows, and no secret reached the log.

export interface SoakOptions {
  seconds: number;
  identitiesPerSecond: number;
  lanes: number;
  artifacts: number;
  artifactBytes: number;
  /** Where the CSV and SVG go (and their file stem). */
  outDir: string;
  name: string;
  print(line: string): void;
  /** Figures not judged (a short run that cannot reach a cap says so here, with its reason). */
  unjudged?: { figure: string; why: string }[];
}

export interface SoakReport {
  passed: boolean;
  problems: string[];
  /** The summary, as Markdown lines. */
  summary: string[];
  samples: Sample[];
  csv: string;
  svg?: string;
}

const MANAGEMENT = { email: 'soak-admin@example.com', password: `soak-${randomBytes(6).toString('hex')}` };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Running {
  name: string;
  gateway: SoakGateway;
  admin: string;
  journalDir: string;
  cacheDir: string;
}

interface Window {
  from: number;
  to: number;
  kind: 'outage' | 'kill' | 'blocklist' | 'clock-forward' | 'clock-back';
  /** For the blocklist: the serial put on it. */
  serial?: string;
}

/**
 * Whether a failure is one the plan allows:
 * - during an outage (and the few seconds after, while the gateway learns upstream is back), what
 *   needs the Mender server: auth without a kept token, `next` (held back), deviceconnect. Not
 *   reports and inventories (the journal takes them), not downloads (the S3 store stays up);
 * - around a kill -9, anything;
 * - while a blocklist change lands, anything of the blocklisted certificate's own devices;
 * - after the clock stepped a day ahead, a download on a link issued before the step (its expiry
 *   is wall clock: expired; the device's next poll gets a fresh one), and after it stepped back,
 *   a link issued while it was ahead (its expiry lies further ahead than a link's lifetime: not
 *   yet valid).
 */
function planned(f: Failure, windows: Window[]): boolean {
  return windows.some((w) => {
    if (f.t < w.from || f.t > w.to) return false;
    switch (w.kind) {
      // 'outage' is the default below.
      case 'kill':
        return true;
      case 'blocklist':
        return f.serial !== undefined && f.serial === w.serial;
      case 'clock-forward':
      case 'clock-back':
        return f.what === 'download' && f.outcome === '403';
      default:
        return ['auth', 'next', 'connect'].includes(f.what);
    }
  });
}

function statusJson(admin: string): Promise<{ journal: { queued: number; bytes: number } }> {
  return new Promise((resolve, reject) =>
    http
      .get(`${admin}/api/status`, { timeout: 10_000 }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          try {
            resolve(JSON.parse(text));
          } catch (err) {
            reject(err);
          }
        });
      })
      .on('timeout', function (this: http.ClientRequest) {
        this.destroy(new Error('timeout'));
      })
      .on('error', reject),
  );
}

function servedCertificateSerial(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: readFileSync(ca), servername: 'localhost' }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.destroy();
      resolve(serial);
    });
    socket.on('error', reject);
  });
}

export async function runSoak(o: SoakOptions): Promise<SoakReport> {
  const plan = soakPlan(o.seconds);
  const dir = mkdtempSync(join(tmpdir(), 'soak-'));
  const problems: string[] = [];
  const summary: string[] = [];
  let store: S3Store | undefined;
  let server: MenderServer | undefined;
  const gateways: Running[] = [];
  let fleet: SoakFleet | undefined;
  try {
    // Certificates: the CA, the server's, device certificates (one revoked by a CRL whose
    // nextUpdate passes mid-run, one put on the blocklist mid-run).
    const material = makeTlsMaterial(dir);
    const certs = Array.from({ length: 8 }, (_, i) => makeDeviceCert(dir, `soak-device-${i}`, material.ca));
    const revoked = certs[7];
    const blocked = certs[6];
    const crlPath = makeCrl(dir, 'soak', material.ca, { revoked: [revoked.serial], nextUpdateDays: plan.crlDueAt / 86400 });
    const blocklistPath = join(dir, 'blocklist');
    writeFileSync(blocklistPath, '# serials refused by the gateway\n');

    store = await startS3Store();
    server = await startMenderServer({
      store,
      autoAccept: true,
      v2Next: 'serve',
      jwtLifetimeSeconds: plan.jwtLifetime,
      users: [MANAGEMENT],
    });
    const artifacts: SoakArtifact[] = [];
    for (let i = 0; i < o.artifacts; i++) {
      const file = join(dir, `soak-artifact-${i}.mender`);
      const bytes = randomBytes(o.artifactBytes);
      writeFileSync(file, bytes);
      const name = `soak-release-${i}`;
      await server.uploadArtifact(file, { name, deviceTypes: [DEVICE_TYPE] });
      artifacts.push({ name, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
      rmSync(file);
    }

    const linkSecret = randomBytes(32).toString('base64');
    const clock = steppedClock(join(dir, 'clock'), { cacheSeconds: 1 });
    const ports = { http: await freePort(), https: await freePort(), mtls: await freePort() };
    // Two gateways on the site: one for the devices on plain HTTP and HTTPS, one for those with
    // client certificates (a gateway with mTLS on authenticates only those). Same features else.
    const features = (name: string, gatewayUrl: string) => ({
      ArtifactsProxy: {
        Enabled: true,
        GatewayURL: gatewayUrl,
        DomainWhitelist: [store!.host],
        ArtifactsCache: {
          Enabled: true,
          Path: join(dir, name, 'cache'),
          MaxSize: 5 * o.artifactBytes,
          SignatureSecret: linkSecret,
          LinkExpireDuration: '30m',
        },
      },
      ReportJournal: { Enabled: true, Path: join(dir, name, 'journal') },
      DeviceSystem: { Enabled: true, SystemID: `soak-${name}`, DefaultInventory: [{ Name: 'site', Value: 'soak' }] },
    });
    const tlsListener = (port: number) => ({
      Enabled: true,
      Listen: `127.0.0.1:${port}`,
      ServerCertificate: material.server.cert,
      ServerKey: material.server.key,
    });
    const common = { UpstreamServer: { URL: server.url, Timeout: '10s' }, Workers: 1 };
    const secrets = () => [MANAGEMENT.password, linkSecret, 'eyJhbGciOi'];
    for (const [name, config] of [
      [
        'site',
        {
          ...common,
          HTTP: { Enabled: true, Listen: `127.0.0.1:${ports.http}` },
          HTTPS: tlsListener(ports.https),
          Features: features('site', `https://127.0.0.1:${ports.https}`),
          Metrics: { Enabled: true, Listen: `127.0.0.1:${await freePort()}` },
        },
      ],
      [
        'mtls',
        {
          ...common,
          HTTP: { Enabled: false },
          HTTPS: tlsListener(ports.mtls),
          Features: {
            ...features('mtls', `https://127.0.0.1:${ports.mtls}`),
            mTLS: {
              Enabled: true,
              CACertificate: material.ca.cert,
              BlacklistPath: blocklistPath,
              CRLPath: crlPath,
              MenderUsername: MANAGEMENT.email,
              MenderPassword: MANAGEMENT.password,
              EnableCache: true,
            },
          },
          Metrics: { Enabled: true, Listen: `127.0.0.1:${await freePort()}` },
        },
      ],
    ] as [string, Record<string, unknown>][]) {
      mkdirSync(join(dir, name, 'cache'), { recursive: true });
      const listen = (config.Metrics as { Listen: string }).Listen;
      gateways.push({
        name,
        gateway: new SoakGateway({ dir, name, config, env: clock.env, secrets }),
        admin: `http://${listen}`,
        journalDir: join(dir, name, 'journal'),
        cacheDir: join(dir, name, 'cache'),
      });
    }
    for (const g of gateways) await g.gateway.start();
    const began = performance.now();
    const now = () => (performance.now() - began) / 1000;

    fleet = new SoakFleet({
      http: `http://127.0.0.1:${ports.http}`,
      https: `https://127.0.0.1:${ports.https}`,
      mtls: `https://127.0.0.1:${ports.mtls}`,
      caFile: material.ca.cert,
      certs,
      server,
      artifactAt: (t) => artifacts[Math.floor(t / Math.max(5, o.seconds / (3 * o.artifacts))) % artifacts.length],
      identitiesPerSecond: o.identitiesPerSecond,
      lanes: o.lanes,
      mtlsShare: 0.15,
      httpsShare: 0.35,
      deploymentShare: 0.05,
      connectShare: 0.03,
      now,
    });
    for (const a of artifacts) fleet.artifactsByName.set(a.name, a);
    fleet.refusedSerials.add(revoked.serial);
    const running = fleet.run();

    const windows: Window[] = [];
    // Samples, every plan.sampleEvery seconds; the heap (a forced GC) every 30 s or so.
    const samples: Sample[] = [];
    let sampling = true;
    const heapEvery = Math.max(1, Math.round((o.seconds >= 600 ? 30 : 10) / plan.sampleEvery));
    // Probes that failed while no kill was under way (a gateway restarting answers nothing), and
    // the cache's evictions summed over restarts (each start counts from 0).
    const probeFailures: string[] = [];
    const lastEvictions = gateways.map(() => 0);
    let evictions = 0;
    const sampler = (async () => {
      for (let k = 0; sampling; k++) {
        const at = now();
        const each = await Promise.all(
          gateways.map((g) =>
            probeGateway(
              {
                pids: () => g.gateway.pids(),
                admin: g.admin,
                inspector: () => g.gateway.inspector,
                journalDir: g.journalDir,
                cacheDir: g.cacheDir,
              },
              k % heapEvery === 0,
            ),
          ),
        );
        const sum = (key: 'rssMb' | 'heapMb' | 'fds' | 'journalKb' | 'cacheMb' | 'series' | 'statusKb') =>
          Math.round(each.reduce((a, f) => a + f[key], 0) * 10) / 10;
        each.forEach((f, i) => {
          if (Number.isNaN(f.evictions)) return;
          evictions += f.evictions >= lastEvictions[i] ? f.evictions - lastEvictions[i] : f.evictions;
          lastEvictions[i] = f.evictions;
        });
        // A probe under way when a kill came fails with it: any overlap with a kill's window.
        const done = now();
        const killing = windows.some((w) => w.kind === 'kill' && done >= w.from && at <= w.to);
        if (!killing)
          for (const [i, f] of each.entries())
            for (const what of f.failed) probeFailures.push(`${gateways[i].name} ${what} at ${at.toFixed(0)} s`);
        samples.push({
          t: Math.round(at * 10) / 10,
          identities: fleet!.identities,
          requests: fleet!.requests,
          rssMb: sum('rssMb'),
          heapMb: sum('heapMb'),
          fds: sum('fds'),
          loopP99Ms: each.some((f) => Number.isNaN(f.loopP99Ms)) ? Number.NaN : Math.max(...each.map((f) => f.loopP99Ms)),
          journalKb: sum('journalKb'),
          cacheMb: sum('cacheMb'),
          series: sum('series'),
          statusKb: sum('statusKb'),
          driverMb: Math.round(rssBytes(process.pid) / 1e5) / 10,
          logLines: gateways.reduce((a, g) => a + [...g.gateway.counts.levels.values()].reduce((x, y) => x + y, 0), 0),
          starts: gateways.reduce((a, g) => a + g.gateway.starts, 0),
          up: Math.round((performance.now() - Math.max(...gateways.map((g) => g.gateway.startedAt))) / 100) / 10,
        });
        // The emulator records every call with its headers for tests' assertions: not what is
        // measured here, and the driver's memory over half an hour.
        server!.calls.length = 0;
        const last = samples[samples.length - 1];
        if (k > 0 && k % Math.round(60 / plan.sampleEvery) === 0)
          o.print(
            `soak: ${last.t.toFixed(0)} s, ${last.identities} identities, RSS ${last.rssMb} MB, heap ${last.heapMb} MB, journal ${last.journalKb} KB, ${fleet!.failures.length} failures so far`,
          );
        await sleep(Math.max(0, (k + 1) * plan.sampleEvery * 1000 - now() * 1000));
      }
    })();

    const marks: { at: number; label: string }[] = [];
    const all = (f: (g: SoakGateway) => unknown) => Promise.all(gateways.map((g) => f(g.gateway)));
    const mtlsGateway = gateways[1].gateway;
    const act = async (e: SoakEvent): Promise<void> => {
      const s = server!;
      const from = now();
      o.print(`soak: ${from.toFixed(0)} s ${e.kind}${e.seconds ? ` (${e.seconds} s)` : ''}`);
      switch (e.kind) {
        case 'outage': {
          const w: Window = { from, to: Number.POSITIVE_INFINITY, kind: 'outage' };
          windows.push(w);
          await s.stop();
          await sleep(e.seconds! * 1000);
          await s.start();
          w.to = now() + 8;
          return;
        }
        case 'reload':
          return void (await all((g) => g.reload()));
        case 'server-certificate': {
          const fresh = makeLeaf(dir, 'server-next', material.ca, { subject: '/CN=localhost', san: 'IP:127.0.0.1,IP:::1,DNS:localhost' });
          writeFileSync(material.server.key, readFileSync(fresh.key));
          writeFileSync(material.server.cert, readFileSync(fresh.cert));
          await all((g) => g.reload());
          await sleep(2000);
          const want = new X509Certificate(readFileSync(fresh.cert)).serialNumber;
          const served = await servedCertificateSerial(ports.https, material.ca.cert).catch((err) => `error ${err.code}`);
          if (served.toUpperCase() !== want.toUpperCase())
            problems.push(`after the certificate change the gateway served ${served}, not ${want}`);
          return;
        }
        case 'blocklist': {
          writeFileSync(blocklistPath, `# serials refused by the gateway\n${blocked.serial}\n`);
          mtlsGateway.reload();
          windows.push({ from, to: from + 5, kind: 'blocklist', serial: blocked.serial });
          await sleep(3000);
          fleet!.refusedSerials.add(blocked.serial);
          return;
        }
        case 'kill': {
          const w: Window = { from, to: Number.POSITIVE_INFINITY, kind: 'kill' };
          windows.push(w);
          marks.push({ at: from, label: 'kill -9' });
          await all((g) => g.kill9());
          await all((g) => g.start());
          w.to = now() + 3;
          return;
        }
        case 'clock-forward':
          marks.push({ at: from, label: 'clock +1 day' });
          await clock.step(86_400);
          windows.push({ from, to: now() + 10, kind: 'clock-forward' });
          return;
        case 'clock-back':
          marks.push({ at: from, label: 'clock back' });
          await clock.step(-86_400);
          windows.push({ from, to: now() + 10, kind: 'clock-back' });
          return;
      }
    };
    const events = plan.events.map(async (e) => {
      await sleep(Math.max(0, e.at - now()) * 1000);
      await act(e);
    });
    await sleep(Math.max(0, o.seconds - now()) * 1000);
    fleet.stop();
    await running;
    await Promise.all(events);

    // Drain: upstream is up; the journal delivers what it holds.
    let queued = -1;
    for (let i = 0; i < 120; i++) {
      const each = await Promise.all(
        gateways.map((g) =>
          statusJson(g.admin)
            .then((j) => j.journal.queued)
            .catch(() => -1),
        ),
      );
      queued = each.includes(-1) ? -1 : each.reduce((a, b) => a + b, 0);
      if (queued === 0) break;
      await sleep(1000);
    }
    sampling = false;
    await sampler;
    if (queued !== 0) problems.push(`the journals still held ${queued} reports two minutes after the end`);

    // Exactly once: every acknowledged report reached the server once; an unacknowledged one at most once.
    let checked = 0;
    const twice: string[] = [];
    for (const book of fleet.reports.values()) {
      const upstream = [
        ...server.statuses(book.deploymentId, book.deviceId),
        ...server.deploymentLogs(book.deploymentId, book.deviceId).map(() => 'log'),
      ];
      for (const status of new Set([...book.acked, ...book.unacked, ...upstream])) {
        const n = (list: string[]) => list.filter((x) => x === status).length;
        checked += n(book.acked);
        if (n(upstream) < n(book.acked) || n(upstream) > n(book.acked) + n(book.unacked))
          twice.push(
            `${book.deviceId} ${status}: acknowledged ${n(book.acked)}, unacknowledged ${n(book.unacked)}, server has ${n(upstream)}`,
          );
      }
    }
    if (twice.length) problems.push(`${twice.length} reports not delivered exactly once: ${twice.slice(0, 5).join('; ')}`);

    const unexpected = fleet.failures.filter((f) => !planned(f, windows));
    if (unexpected.length) {
      const byKind = new Map<string, number>();
      for (const f of unexpected) byKind.set(`${f.what} ${f.outcome}`, (byKind.get(`${f.what} ${f.outcome}`) ?? 0) + 1);
      problems.push(
        `${unexpected.length} requests failed outside the plan: ${[...byKind].map(([k, n]) => `${k}×${n}`).join(', ')}; first: ${unexpected
          .slice(0, 5)
          .map((f) => `${f.what} ${f.outcome} at ${f.t.toFixed(1)} s${f.mtls ? ' (mTLS)' : ''}${f.detail ? ` (${f.detail})` : ''}`)
          .join(', ')}`,
      );
    }
    for (const g of gateways)
      if (g.gateway.leaks.length)
        problems.push(`secrets in the ${g.name} gateway's log: ${g.gateway.leaks.length} lines, e.g. ${g.gateway.leaks[0]}`);
    const crlWarned = [...mtlsGateway.counts.messages.keys()].some((k) => k.startsWith('warn') && /CRL|revocation list/i.test(k));
    if (!crlWarned) problems.push('no warning was logged once the CRL passed its nextUpdate');
    if (fleet.identities < o.identitiesPerSecond * o.seconds * 0.9)
      problems.push(
        `only ${fleet.identities} identities (planned ${Math.round(o.identitiesPerSecond * o.seconds)}): the box could not keep the pace`,
      );
    // Inventories: the server holds what each device last had acknowledged.
    const held = new Map(server.devices().map((d) => [d.id, d.inventory.serial]));
    const lostInventories = [...fleet.inventories].filter(([id, serial]) => held.get(id) !== serial);
    if (lostInventories.length)
      problems.push(`${lostInventories.length} acknowledged inventories are not on the server, e.g. device ${lostInventories[0][0]}`);
    // The cache did its work: artifacts filled it and the small cap made it evict.
    const cached = gateways.reduce((n, g) => n + (g.gateway.counts.messages.get('info artifact cached') ?? 0), 0);
    if (cached === 0 || evictions === 0)
      problems.push(`the cache did not fill and evict (${cached} artifacts cached, ${evictions} evictions)`);
    if (probeFailures.length > samples.length * 0.05)
      problems.push(`${probeFailures.length} probes of the gateways failed outside a kill, e.g. ${probeFailures.slice(0, 3).join(', ')}`);

    // The journal is at rest outside outages and a while after one (its replay): half a minute in
    // a long run, a few seconds in a short one.
    const replay = Math.min(30, o.seconds / 40);
    const atRest = (t: number) => !windows.some((w) => w.kind === 'outage' && t >= w.from && t <= w.to + replay);
    const unjudged = new Map((o.unjudged ?? []).map((u) => [u.figure, u.why]));
    const level = levelling(samples, o.seconds, atRest).map((l) =>
      unjudged.has(l.label) ? { ...l, ok: true, why: unjudged.get(l.label) } : l,
    );
    // The cache has a cap, not a plateau: it fills up to its MaxSize (and evicts), whenever that
    // happens; what is judged is that it never holds more (the sidecars' bytes allowed).
    const capMb = (gateways.length * 5 * o.artifactBytes) / 1e6;
    const cacheReadings = samples.filter((s) => !Number.isNaN(s.cacheMb));
    const cacheMax = cacheReadings.reduce((m, s) => Math.max(m, s.cacheMb), 0);
    if (cacheReadings.length === 0 || cacheMax > capMb * 1.02 + 0.1)
      problems.push(`the caches held ${cacheMax} MB, more than their caps (${capMb.toFixed(1)} MB together)`);
    for (const l of level)
      if (!l.ok)
        problems.push(
          `${l.label} did not level off: ${l.middle} in the middle third, ${l.last} in the last (${l.readings[0]} and ${l.readings[1]} readings)`,
        );

    // The summary.
    const third = o.seconds / 3;
    const atOrAfter = (t: number) => samples.find((s) => s.t >= t) ?? samples[samples.length - 1];
    const steady = [atOrAfter(third), samples[samples.length - 1]];
    const linesPerHour = Math.round(((steady[1].logLines - steady[0].logLines) / Math.max(1, steady[1].t - steady[0].t)) * 3600);
    const planned$ = fleet.failures.length - unexpected.length;
    const log = (g: SoakGateway) =>
      `${[...g.counts.levels].map(([k, n]) => `${k} ${n}`).join(', ')} lines (${(g.counts.bytes / 1e6).toFixed(1)} MB); top: ${[
        ...g.counts.messages,
      ]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 5)
        .map(([k, n]) => `${k} ${n}`)
        .join('; ')}`;
    summary.push(
      `${o.seconds} s, two gateways (site: HTTP and HTTPS; mtls), ${fleet.identities} identities, ${fleet.requests} device requests, ${fleet.reports.size} deployments (${checked} acknowledged status reports and logs checked), ${mtlsGateway.starts - 1} kill -9 restarts of each`,
      `failures: ${planned$} as the plan allows (outages, kills, blocklist, clock steps), ${unexpected.length} outside it; ${fleet.inventories.size} acknowledged inventories checked on the server; ${cached} artifacts cached, ${evictions} evictions; ${probeFailures.length} failed probes`,
      '',
      '| figure | middle third | last third | levels off |',
      '|---|---|---|---|',
      ...level.map((l) => `| ${l.label} | ${l.middle} | ${l.last} | ${'why' in l ? `not judged: ${l.why}` : l.ok ? 'yes' : '**no**'} |`),
      `| cache MB (both caps: ${capMb.toFixed(1)}) | highest over the run: ${cacheMax} | | ${cacheMax <= capMb * 1.02 + 0.1 ? 'within the caps' : '**over**'} |`,
      '',
      `log lines, both gateways, after the warm-up: ${linesPerHour} per hour`,
      ...gateways.map((g) => `log of ${g.name}: ${log(g.gateway)}`),
      `outcomes: ${[...fleet.outcomes]
        .sort()
        .map(([k, n]) => `${k} ${n}`)
        .join(', ')}`,
    );
    mkdirSync(o.outDir, { recursive: true });
    const csv = join(o.outDir, `${o.name}.csv`);
    writeCsv(csv, samples);
    writeFileSync(
      join(o.outDir, `${o.name}.failures.csv`),
      [
        't,what,outcome,mtls,planned,detail',
        ...fleet.failures.map(
          (f) => `${f.t.toFixed(1)},${f.what},${f.outcome},${f.mtls},${planned(f, windows)},"${(f.detail ?? '').replace(/"/g, "'")}"`,
        ),
      ].join('\n') + '\n',
    );
    const svg = join(o.outDir, `${o.name}.svg`);
    const outages = windows.filter((w) => w.kind === 'outage').map((w) => [w.from, w.to - 8] as [number, number]);
    const drawn = plotSvg(csv, svg, `soak ${o.name}: ${fleet.identities} identities in ${o.seconds} s`, o.seconds, marks, outages);
    return { passed: problems.length === 0, problems, summary, samples, csv, svg: drawn ? svg : undefined };
  } finally {
    fleet?.stop();
    fleet?.close();
    for (const g of gateways) await g.gateway.stop();
    await server?.start().catch(() => undefined);
    await server?.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
