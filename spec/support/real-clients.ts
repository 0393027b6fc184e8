import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireClientGlobals, releaseClientGlobals, restoreClientGlobalsNow } from './client-globals';
import { probeFastCerts, startRealClient, stopRealClient, type ClientSettings, type RealClient } from './real-client-process';

// A fleet of N real mender clients in one temp dir, with the global files they need installed
// for as long as it runs, a waitFor with log tails on failure, and a stop that leaves nothing.

export type { RealClient } from './real-client-process';

export interface FleetOptions extends Omit<ClientSettings, 'clientCert'> {
  count: number;
  /** mTLS: a client certificate and key per client index. */
  clientCert?: (index: number) => { cert: string; key: string } | undefined;
  /** MACs are `<macPrefix>:HH:LL` from the client's index; vary it to keep fleets apart. */
  macPrefix?: string;
  /** Start without the system CA scan (a private mount namespace). Default: when it works. */
  fastCerts?: boolean;
  /** Parent dir for the fleet's temp dir. */
  baseDir?: string;
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
    if (!hasCommand(bin)) return `${bin} is not installed; as root: apt-get install mender-client mender-artifact`;
  }
  return null;
}

// Clients of every fleet in this process; killed if the process exits without stopping them.
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

export async function startFleet(opts: FleetOptions): Promise<Fleet> {
  const unavailable = realClientsUnavailable();
  if (unavailable) throw new Error(`real mender clients: ${unavailable}`);
  const dir = mkdtempSync(join(opts.baseDir ?? tmpdir(), 'mender-fleet-'));
  const emptyDir = join(dir, 'empty-certs');
  mkdirSync(emptyDir);
  // MENDER_FASTCERTS=0 turns the fast start off, to try the path machines without unshare take.
  const disabled = opts.fastCerts === false || process.env.MENDER_FASTCERTS === '0';
  const fastCertsNote = disabled ? 'disabled (option or MENDER_FASTCERTS=0)' : (probeFastCerts(emptyDir) ?? undefined);
  const fastCerts = fastCertsNote === undefined;

  await acquireClientGlobals();
  killLiveOnExit();
  // Go honours proxy variables; the clients talk to loopback only.
  const env = { ...process.env };
  for (const k of ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY']) delete env[k];

  const clients: RealClient[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(clients.map((c) => stopRealClient(c)));
    await releaseClientGlobals();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let index = 0; index < opts.count; index++) {
      const clientDir = join(dir, `client-${String(index).padStart(3, '0')}`);
      const settings: ClientSettings = { ...opts, clientCert: opts.clientCert?.(index) };
      const client = startRealClient(
        index,
        macFor(opts.macPrefix ?? '02:00:00:00', index + 1),
        clientDir,
        settings,
        fastCerts ? emptyDir : null,
        env,
      );
      live.add(client.process);
      client.process.once('exit', () => live.delete(client.process));
      clients.push(client);
    }
  } catch (err) {
    await stopAll();
    throw err;
  }

  const logTails = (lines = 15, maxClients = 3): string =>
    clients
      .slice(0, maxClients)
      .map((c) => `--- client ${c.index} (${c.mac}) ${c.logFile}\n${c.logTail(lines)}`)
      .join('\n');

  let stopping: Promise<void> | undefined;
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
        if (dead) throw new Error(`waiting for ${what}: client ${dead.index} exited (${dead.exitCode})\n${dead.logTail(30)}`);
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${logTails()}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    stop() {
      stopping ??= stopAll();
      return stopping;
    },
  };
}
