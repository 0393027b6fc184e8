import { execFile, spawnSync } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './gateway-process';

// A fleet of N real Mender client 5.1 devices (mender-auth + mender-update, each instance with its
// own private D-Bus daemon), laid out and run by the run/ scripts that ship with the prebuilt
// client (../shared/clients/mender-5.1.0/README.md). Its interface mirrors real-clients.ts:
// waitFor with log tails on failure, logsMatching, and a stop that leaves no process or file.

const run = promisify(execFile);

/** The one variable that says where client 5 is: a directory holding bin/ and run/. */
export const CLIENT5_DIR_VARIABLE = 'MENDER_CLIENT5_DIR';
const CLIENT5_DEFAULT_DIR = resolve(REPO_ROOT, '..', 'shared', 'clients', 'mender-5.1.0');

export function client5Dir(): string {
  return resolve(process.env[CLIENT5_DIR_VARIABLE] || CLIENT5_DEFAULT_DIR);
}

/** Why client 5 cannot run here, or null if it can. */
export function client5Unavailable(): string | null {
  const dir = client5Dir();
  for (const file of ['bin/mender-update', 'bin/mender-auth', 'run/mkinstance.sh', 'run/start-instance.sh']) {
    if (!existsSync(join(dir, file))) {
      return `Mender client 5 not found (${join(dir, file)} missing): set ${CLIENT5_DIR_VARIABLE} to the directory of a client 5.1 build (bin/, run/), see ../shared/clients/mender-5.1.0/README.md`;
    }
  }
  if (spawnSync('sh', ['-c', 'command -v dbus-daemon && command -v dbus-send']).status !== 0) {
    return 'dbus-daemon/dbus-send not found: apt-get install dbus (client 5 runs each instance with a private D-Bus daemon)';
  }
  return null;
}

export interface Client5Options {
  count: number;
  serverUrl: string;
  /** PEM the devices trust for the server (mkinstance --ca). */
  ca?: string;
  /** mTLS: a client certificate and key per instance index. */
  clientCert?: (index: number) => { cert: string; key: string } | undefined;
  /** MACs are `<macPrefix>:HH:LL` from the index; vary it to keep fleets apart. */
  macPrefix?: string;
  /** Update, inventory and retry poll interval (mkinstance --poll). Default 2. */
  pollSeconds?: number;
  logLevel?: 'trace' | 'debug' | 'info' | 'warning';
  baseDir?: string;
}

export interface Client5 {
  index: number;
  mac: string;
  identity: { mac: string };
  /** The instance dir (etc/, usr/, var/, run/). */
  dir: string;
  dataDir: string;
  /** mender-update's log; the auth daemon's is authLogFile. */
  logFile: string;
  authLogFile: string;
  /** Path of a file the single-file module installed at make-artifact's PER_INSTANCE_DEST_DIR. */
  installedPath(fileName: string): string;
  /** Last lines of both daemons' logs. */
  logTail(lines?: number): string;
  /** The daemon that is no longer running, or null while both run. */
  deadDaemon(): string | null;
  /**
   * The auth key's public half (SPKI PEM): mender-auth makes its own Ed25519 key on first start
   * and signs auth requests with it, even when a client certificate is configured.
   */
  publicKeyPem(): string;
  /** The instance's private D-Bus (start-instance.sh writes it): where mender-connect finds mender-auth. */
  busAddress(): string;
}

export interface Client5Fleet {
  dir: string;
  clients: Client5[];
  waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<void>;
  /** Clients whose mender-update or mender-auth log matches. */
  logsMatching(pattern: RegExp): Client5[];
  logTails(lines?: number, maxClients?: number): string;
  /** Poll for a deployment now (SIGUSR1) or send the inventory now (SIGUSR2). */
  kick(what: 'update' | 'inventory'): Promise<void>;
  stop(): Promise<void>;
}

function macFor(prefix: string, index: number): string {
  const hex = (n: number): string => n.toString(16).padStart(2, '0');
  return `${prefix}:${hex((index >> 8) & 0xff)}:${hex(index & 0xff)}`;
}

/** The last lines of a log, device tokens masked: at debug level both daemons log request headers. */
function tail(file: string, lines: number): string {
  if (!existsSync(file)) return '(no log)';
  // Only the records' first lines: the header dumps of debug records would fill the tail.
  const records = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('record_id='));
  const text = records
    .slice(-lines)
    .map((l) => l.replace(/^record_id=\d+ /, ''))
    .join('\n');
  return text.replace(/(Bearer\s+)[\w.-]+/gi, '$1<redacted>');
}

function rawTail(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8').slice(-2000) : '(no log)';
}

function pidAlive(pidFile: string): boolean {
  if (!existsSync(pidFile)) return false;
  const pid = readFileSync(pidFile, 'utf8').trim();
  try {
    // A zombie keeps /proc/<pid> but has an empty cmdline (the scripts' own test).
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').length > 0;
  } catch {
    return false;
  }
}

function makeClient(index: number, mac: string, dir: string): Client5 {
  const logFile = join(dir, 'mender-update.log');
  const authLogFile = join(dir, 'mender-auth.log');
  const dataDir = join(dir, 'var', 'lib', 'mender');
  return {
    index,
    mac,
    identity: { mac },
    dir,
    dataDir,
    logFile,
    authLogFile,
    // The module's cwd is <data>/modules/v3/payloads/0000/tree, as with 3.4.
    installedPath: (fileName) => join(dataDir, 'dest', fileName),
    logTail: (lines = 20) => `[mender-update]\n${tail(logFile, lines)}\n[mender-auth]\n${tail(authLogFile, Math.ceil(lines / 2))}`,
    publicKeyPem: () =>
      createPublicKey(readFileSync(join(dataDir, 'mender-agent.pem')))
        .export({ type: 'spki', format: 'pem' })
        .toString(),
    busAddress: () => readFileSync(join(dir, 'run', 'dbus.address'), 'utf8').trim(),
    deadDaemon: () => ['mender-auth', 'mender-update'].find((d) => !pidAlive(join(dir, 'run', `${d}.pid`))) ?? null,
  };
}

// Instances of every fleet in this process: their daemons are killed if the process exits
// without stopping them (they run in their own sessions, so nothing else would).
const live = new Set<string>();
let exitHookInstalled = false;
function killLiveOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const dir of live) {
      for (const d of ['mender-update', 'mender-auth', 'dbus']) {
        const pidFile = join(dir, 'run', `${d}.pid`);
        if (pidAlive(pidFile)) {
          try {
            process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
          } catch {
            /* gone */
          }
        }
      }
    }
  });
}

export async function startClient5Fleet(opts: Client5Options): Promise<Client5Fleet> {
  const unavailable = client5Unavailable();
  if (unavailable) throw new Error(unavailable);
  const scripts = join(client5Dir(), 'run');
  const dir = mkdtempSync(join(opts.baseDir ?? tmpdir(), 'mender5-fleet-'));
  killLiveOnExit();
  // The client honours proxy variables; the devices talk to loopback only.
  const env = { ...process.env };
  for (const k of ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY']) delete env[k];

  const clients: Client5[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(
      clients.map((c) => run(join(scripts, 'stop-instance.sh'), [c.dir], { env: { ...env, STOP_TIMEOUT: '5' } }).catch(() => undefined)),
    );
    for (const c of clients) live.delete(c.dir);
    // CLIENT5_KEEP=1 keeps the instances' dirs (configs, logs) to look into a failure.
    if (process.env.CLIENT5_KEEP === '1') process.stderr.write(`client 5 fleet kept in ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  };
  const logTails = (lines = 15, maxClients = 3): string =>
    clients
      .slice(0, maxClients)
      .map((c) => `--- client5 ${c.index} (${c.mac}) ${c.dir}\n${c.logTail(lines)}`)
      .join('\n');

  // Every start is waited for before a failure is acted on (allSettled, not all): a stop made
  // while another instance is still starting would miss its pids and leave its daemons running.
  const settled = async (work: Promise<unknown>[]): Promise<void> => {
    const failed = (await Promise.allSettled(work)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  };
  try {
    await settled(
      Array.from({ length: opts.count }, async (_, index) => {
        const mac = macFor(opts.macPrefix ?? '02:00:00:50', index + 1);
        const instanceDir = join(dir, `dev-${String(index).padStart(3, '0')}`);
        const args = [
          instanceDir,
          opts.serverUrl,
          '--mac',
          mac,
          '--poll',
          String(opts.pollSeconds ?? 2),
          '--log-level',
          opts.logLevel ?? 'debug',
        ];
        if (opts.ca) args.push('--ca', opts.ca);
        const tls = opts.clientCert?.(index);
        if (tls) args.push('--client-cert', tls.cert, '--client-key', tls.key);
        await run(join(scripts, 'mkinstance.sh'), args, { env });
        clients[index] = makeClient(index, mac, instanceDir);
      }),
    );
    await settled(
      clients.map(async (c) => {
        live.add(c.dir);
        try {
          await run(join(scripts, 'start-instance.sh'), [c.dir], { env });
        } catch (err) {
          // Seen once in a run of all client-5 files: "dbus-daemon did not come up". One more try,
          // with what the daemon said, before failing the fleet.
          const said = `${(err as Error).message.trim()}\n[dbus.log] ${rawTail(join(c.dir, 'dbus.log'))}`;
          process.stderr.write(`client 5 instance ${c.dir} did not start, trying once more: ${said}\n`);
          await run(join(scripts, 'stop-instance.sh'), [c.dir], { env }).catch(() => undefined);
          await run(join(scripts, 'start-instance.sh'), [c.dir], { env }).catch((again: Error) => {
            throw new Error(`${again.message.trim()}\n[dbus.log] ${rawTail(join(c.dir, 'dbus.log'))}\nfirst try: ${said}`);
          });
        }
      }),
    );
  } catch (err) {
    const tails = logTails(30, opts.count);
    await stopAll();
    throw new Error(`client 5 fleet did not start: ${(err as Error).message}\n${tails}`);
  }

  let stopping: Promise<void> | undefined;
  return {
    dir,
    clients,
    logTails,
    logsMatching: (pattern) =>
      clients.filter((c) => [c.logFile, c.authLogFile].some((f) => existsSync(f) && pattern.test(readFileSync(f, 'utf8')))),
    async waitFor(predicate, timeoutMs, what) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (predicate()) return;
        const dead = clients.find((c) => c.deadDaemon() !== null);
        if (dead)
          throw new Error(
            `waiting for ${what}: ${dead.deadDaemon()} of client5 ${dead.index} (${dead.mac}) is not running\n${dead.logTail(40)}`,
          );
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${logTails()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async kick(what) {
      await Promise.all(clients.map((c) => run(join(scripts, 'kick-instance.sh'), [c.dir, what])));
    },
    stop() {
      stopping ??= stopAll();
      return stopping;
    },
  };
}

/** The statuses a client 5.1 device reports for a successful single-file deployment. */
// Observed: one 'downloading' (3.4 sends three), 'installing' at ArtifactInstall and again at
// ArtifactCommit, then 'success'.
export const CLIENT5_STATUSES = ['downloading', 'installing', 'installing', 'success'];

/** Log lines of client 5's retry paths: a healthy run takes none of them. */
export const CLIENT5_RETRY = /Resuming download|Retry \d+\/|will retry|retrying/i;

/** Client 5's log line once the last status of a deployment was answered (by upstream or the journal). */
export const CLIENT5_FINISHED = /Deployment with ID \S+ finished with status: (Success|Failure)/;
