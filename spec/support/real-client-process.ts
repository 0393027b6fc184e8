import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// One real mender client (Debian 3.4) as a plain process: its own data dir, identity
// (MENDER_TEST_MAC, read by the global identity script), key and mender.conf
// (real-client.md §1, §2, §6). Fleets of them are in real-clients.ts.

export interface ClientSettings {
  serverUrl: string;
  /** PEM file trusted in addition to the system store (a CA or the server's leaf). */
  serverCertificate?: string;
  /** mTLS client certificate and key; the key then also signs auth requests. */
  clientCert?: { cert: string; key: string };
  deviceType?: string;
  updatePollSeconds?: number;
  inventoryPollSeconds?: number;
  logLevel?: 'debug' | 'info' | 'warning';
  /** Own process group: a Ctrl-C on the terminal reaches only the parent, which stops it. */
  detached?: boolean;
  /** A private system bus (private-bus.ts): D-Bus on, for mender-connect beside the client. */
  dbusAddress?: string;
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
  /** undefined while running */
  exitCode: number | null | undefined;
  /** Path of a file the single-file module installed (PER_INSTANCE_DEST_DIR resolves here). */
  installedPath(fileName: string): string;
  logTail(lines?: number): string;
}

const SYSTEM_CERT_DIR = '/usr/lib/ssl/certs';
let fastCertsProbe: string | null | undefined;

/**
 * null when a private bind mount of an empty dir over the system CA dir works here (the client
 * then skips ~1.2 CPU-s of scanning it at start, §6), else the reason it does not.
 */
export function probeFastCerts(emptyDir: string): string | null {
  if (fastCertsProbe !== undefined) return fastCertsProbe;
  const r = spawnSync('unshare', ['-m', 'sh', '-c', `mount --bind "${emptyDir}" ${SYSTEM_CERT_DIR}`], { encoding: 'utf8' });
  fastCertsProbe =
    r.status === 0
      ? null
      : `unshare/mount not permitted (${(r.stderr || String(r.error)).trim()}); clients scan the system CA dir at start (~1.2 CPU-s each)`;
  return fastCertsProbe;
}

function tail(file: string, lines: number): string {
  if (!existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

/** Prepare dir and start the client. fastCertsDir: the empty dir to mount over the CA dir, or null. */
export function startRealClient(
  index: number,
  mac: string,
  dir: string,
  settings: ClientSettings,
  fastCertsDir: string | null,
  env: NodeJS.ProcessEnv,
): RealClient {
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(join(dataDir, 'device_type'), `device_type=${settings.deviceType ?? 'test-device'}\n`);

  const tls = settings.clientCert;
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
    ServerURL: settings.serverUrl,
    UpdatePollIntervalSeconds: settings.updatePollSeconds ?? 2,
    InventoryPollIntervalSeconds: settings.inventoryPollSeconds ?? 5,
    RetryPollIntervalSeconds: 1,
    RetryPollCount: 3,
    DBus: { Enabled: settings.dbusAddress !== undefined },
  };
  if (settings.serverCertificate) conf.ServerCertificate = settings.serverCertificate;
  if (tls) conf.HttpsClient = { Certificate: tls.cert, Key: tls.key };
  const confPath = join(dir, 'mender.conf');
  writeFileSync(confPath, JSON.stringify(conf, null, 2));

  // -b at a missing file: the default fallback config under /var/lib/mender is never read.
  const logFile = join(dir, 'mender.log');
  const args = [
    '--no-syslog',
    '-l',
    settings.logLevel ?? 'info',
    '-c',
    confPath,
    '-b',
    join(dir, 'nonexistent.conf'),
    '-d',
    dataDir,
    'daemon',
  ];
  const quoted = args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const [cmd, cmdArgs]: [string, string[]] = fastCertsDir
    ? ['unshare', ['-m', 'sh', '-c', `mount --bind '${fastCertsDir}' ${SYSTEM_CERT_DIR} && exec mender ${quoted}`]]
    : ['mender', args];
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(cmd, cmdArgs, {
      cwd: dir,
      env: { ...env, MENDER_TEST_MAC: mac, ...(settings.dbusAddress ? { DBUS_SYSTEM_BUS_ADDRESS: settings.dbusAddress } : {}) },
      stdio: ['ignore', fd, fd],
      detached: settings.detached ?? false,
    });
  } finally {
    closeSync(fd);
  }
  const client: RealClient = {
    index,
    mac,
    identity: { mac },
    dir,
    dataDir,
    logFile,
    publicKeyPem,
    process: child,
    exitCode: undefined,
    installedPath: (fileName) => join(dataDir, 'dest', fileName),
    logTail: (lines = 20) => tail(logFile, lines),
  };
  child.on('exit', (code, signal) => {
    client.exitCode = code ?? (signal ? -1 : null);
  });
  child.on('error', () => {
    client.exitCode = -2;
  });
  return client;
}

/** SIGTERM, SIGKILL after graceMs; resolves once it has exited. */
export function stopRealClient(client: RealClient, graceMs = 5000): Promise<void> {
  return new Promise((resolve) => {
    if (client.exitCode !== undefined) return resolve();
    client.process.once('exit', () => resolve());
    client.process.kill('SIGTERM');
    setTimeout(() => client.process.kill('SIGKILL'), graceMs).unref();
  });
}
