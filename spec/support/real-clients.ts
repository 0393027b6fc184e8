import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireClientGlobals, releaseClientGlobals, restoreClientGlobalsNow } from './client-globals';

// N real Debian mender clients (3.4), each a plain process with its own data dir, identity
// (MENDER_TEST_MAC), pre-made EC P-256 key and mender.conf (real-client.md §1, §2, §6).

export interface FleetOptions {
  count: number;
  serverUrl: string;
  /** PEM file the clients trust in addition to the system store (a CA or the server's leaf). */
  serverCertificate?: string;
  /** mTLS: a client certificate and key per client; the key then also signs auth requests. */
  clientCert?: (index: number) => { cert: string; key: string } | undefined;
  /** MACs are `<macPrefix>:HH:LL` from the client's index; vary it to keep fleets apart. */
  macPrefix?: string;
  deviceType?: string;
  updatePollSeconds?: number;
  inventoryPollSeconds?: number;
  logLevel?: 'debug' | 'info' | 'warning';
  /** Start without the system CA scan (a private mount namespace). Default: when it works. */
  fastCerts?: boolean;
  /** Parent dir for the fleet's temp dir. */
  baseDir?: string;
  /** Own process group: a Ctrl-C on the terminal reaches only the parent, which stops them. */
  detached?: boolean;
}

export interface RealClient {
  index: number;
  mac: string;
  identity: { mac: string };
  dir: string;
  dataDir: string;
  logFile: string;
  /** The auth public key (SPKI PEM), e.g. for preauthorizing. */
  publicKeyPem: string;
  process: ChildProcess;
  exitCode: number | null | undefined;
  /** Path of a file the single-file module installed (PER_INSTANCE_DEST_DIR resolves here). */
  installedPath(fileName: string): string;
  logTail(lines?: number): string;
}

export interface Fleet {
  dir: string;
  clients: RealClient[];
  fastCerts: boolean;
  /** Why the fast start was not used, if it was not. */
  fastCertsNote?: string;
  /** Resolve when predicate() holds; reject after timeoutMs with log tails, or at once if a client died. */
  waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<void>;
  /** Clients whose log matches, e.g. to prove that no retry backoff was entered. */
  logsMatching(pattern: RegExp): RealClient[];
  /** Last lines of every client's log, for a failure message. */
  logTails(lines?: number, maxClients?: number): string;
  signalAll(signal: NodeJS.Signals): void;
  stop(): Promise<void>;
}

export function hasCommand(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
}

/** Why real clients can't run here, or null if they can. */
export function realClientsUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'they need root (they read files under /usr/share/mender and /etc/mender); run as root';
  for (const bin of ['mender', 'mender-artifact']) {
    if (!hasCommand(bin)) {
      return `${bin} is not installed; as root: apt-get install mender-client mender-artifact`;
    }
  }
  return null;
}

const SYSTEM_CERT_DIR = '/usr/lib/ssl/certs';
let fastCertsProbe: string | null | undefined;

/** null when a private bind mount over the system cert dir works here, else the reason. */
function probeFastCerts(emptyDir: string): string | null {
  if (fastCertsProbe !== undefined) return fastCertsProbe;
  const r = spawnSync('unshare', ['-m', 'sh', '-c', `mount --bind "${emptyDir}" ${SYSTEM_CERT_DIR}`], { encoding: 'utf8' });
  fastCertsProbe = r.status === 0 ? null : `unshare/mount not permitted (${(r.stderr || String(r.error)).trim()}); clients scan the system CA dir at start (~1.2 CPU-s each)`;
  return fastCertsProbe;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function killLiveOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
    restoreClientGlobalsNow();
  });
}

function macFor(prefix: string, index: number): string {
  const hex = (n: number): string => n.toString(16).padStart(2, '0');
  return `${prefix}:${hex((index >> 8) & 0xff)}:${hex(index & 0xff)}`;
}

function tail(file: string, lines: number): string {
  if (!existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

export async function startFleet(opts: FleetOptions): Promise<Fleet> {
  const unavailable = realClientsUnavailable();
  if (unavailable) throw new Error(unavailable);
  const dir = mkdtempSync(join(opts.baseDir ?? tmpdir(), 'mender-fleet-'));
  const emptyDir = join(dir, 'empty-certs');
  mkdirSync(emptyDir);
  // MENDER_FASTCERTS=0 turns the fast start off, to try the path machines without unshare take.
  const disabled = opts.fastCerts === false || process.env.MENDER_FASTCERTS === '0';
  const fastCertsNote = disabled ? 'disabled (option or MENDER_FASTCERTS=0)' : probeFastCerts(emptyDir) ?? undefined;
  const fastCerts = fastCertsNote === undefined;

  await acquireClientGlobals();
  killLiveOnExit();
  const clients: RealClient[] = [];
  const env = { ...process.env };
  for (const k of ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY']) delete env[k];

  try {
    for (let index = 0; index < opts.count; index++) {
      clients.push(startClient(index, dir, emptyDir, fastCerts, opts, env));
    }
  } catch (err) {
    await stopAll(clients, dir);
    throw err;
  }

  const logTails = (lines = 15, maxClients = 3): string =>
    clients.slice(0, maxClients).map((c) => `--- client ${c.index} (${c.mac}) ${c.logFile}\n${c.logTail(lines)}`).join('\n');

  let stopped = false;
  return {
    dir,
    clients,
    fastCerts,
    fastCertsNote,
    logTails,
    logsMatching: (pattern) => clients.filter((c) => existsSync(c.logFile) && pattern.test(readFileSync(c.logFile, 'utf8'))),
    signalAll(signal) {
      for (const c of clients) if (c.exitCode === undefined) c.process.kill(signal);
    },
    async waitFor(predicate, timeoutMs, what) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (predicate()) return;
        const dead = clients.find((c) => c.exitCode !== undefined);
        if (dead) {
          throw new Error(`waiting for ${what}: client ${dead.index} exited (${dead.exitCode})\n${dead.logTail(30)}`);
        }
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${logTails()}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopAll(clients, dir);
    },
  };
}

function startClient(
  index: number, fleetDir: string, emptyDir: string, fastCerts: boolean, opts: FleetOptions, env: NodeJS.ProcessEnv,
): RealClient {
  const mac = macFor(opts.macPrefix ?? '02:00:00:00', index + 1);
  const dir = join(fleetDir, `client-${String(index).padStart(3, '0')}`);
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(join(dataDir, 'device_type'), `device_type=${opts.deviceType ?? 'test-device'}\n`);

  const tls = opts.clientCert?.(index);
  let publicKeyPem: string;
  if (tls) {
    publicKeyPem = spawnSync('openssl', ['pkey', '-in', tls.key, '-pubout'], { encoding: 'utf8' }).stdout;
  } else {
    // A ready EC key spares the client RSA-3072 generation (0.3–3 s of CPU each).
    const pair = generateKeyPairSync('ec', {
      namedCurve: 'prime256v1',
      privateKeyEncoding: { type: 'sec1', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    writeFileSync(join(dataDir, 'mender-agent.pem'), pair.privateKey, { mode: 0o600 });
    publicKeyPem = pair.publicKey;
  }

  const conf: Record<string, unknown> = {
    ServerURL: opts.serverUrl,
    UpdatePollIntervalSeconds: opts.updatePollSeconds ?? 2,
    InventoryPollIntervalSeconds: opts.inventoryPollSeconds ?? 5,
    RetryPollIntervalSeconds: 1,
    RetryPollCount: 3,
    DBus: { Enabled: false },
  };
  if (opts.serverCertificate) conf.ServerCertificate = opts.serverCertificate;
  if (tls) conf.HttpsClient = { Certificate: tls.cert, Key: tls.key };
  const confPath = join(dir, 'mender.conf');
  writeFileSync(confPath, JSON.stringify(conf, null, 2));

  const logFile = join(dir, 'mender.log');
  const args = ['--no-syslog', '-l', opts.logLevel ?? 'info', '-c', confPath, '-b', join(dir, 'nonexistent.conf'), '-d', dataDir, 'daemon'];
  const quoted = args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const [cmd, cmdArgs] = fastCerts
    ? ['unshare', ['-m', 'sh', '-c', `mount --bind '${emptyDir}' ${SYSTEM_CERT_DIR} && exec mender ${quoted}`]]
    : ['mender', args];
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(cmd as string, cmdArgs as string[], { cwd: dir, env: { ...env, MENDER_TEST_MAC: mac }, stdio: ['ignore', fd, fd], detached: opts.detached ?? false });
  } finally {
    closeSync(fd);
  }
  live.add(child);
  const client: RealClient = {
    index, mac, identity: { mac }, dir, dataDir, logFile, publicKeyPem, process: child, exitCode: undefined,
    installedPath: (fileName) => join(dataDir, 'dest', fileName),
    logTail: (lines = 20) => tail(logFile, lines),
  };
  child.on('exit', (code, signal) => {
    live.delete(child);
    client.exitCode = code ?? (signal ? -1 : null);
  });
  child.on('error', () => { client.exitCode = -2; });
  return client;
}

async function stopAll(clients: RealClient[], dir: string): Promise<void> {
  const exits = clients.map((c) => new Promise<void>((resolve) => {
    if (c.exitCode !== undefined) return resolve();
    c.process.once('exit', () => resolve());
    c.process.kill('SIGTERM');
    setTimeout(() => c.process.kill('SIGKILL'), 5000).unref();
  }));
  await Promise.all(exits);
  await releaseClientGlobals();
  rmSync(dir, { recursive: true, force: true });
}
