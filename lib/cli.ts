// The mender-gateway command: the product's flags (§2.1), then config → file checks → start.
// Every failure is one readable line on stderr and a non-zero exit: 2 for usage and
// configuration errors, 1 when the gateway cannot start (port in use, bad certificate).

import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { checkConfigFiles } from './config/check-files';
import { INSTALL_ROOT } from './config/install-root';
import { ConfigError, DEFAULT_CONFIG_PATH, loadConfig } from './config/load-config';
import { parseDuration } from './config/parse-duration';
import { redactedConfig } from './config/redacted-config';
import { logLevelOf, reloadConfig } from './admin/reload-config';
import { resolveLinkSecret } from './artifacts/link-secret';
import type { GatewayConfig } from './config/types';
import type { RunningGateway } from './gateway';
import { LEVELS, createLogger, isLevel, type Logger } from './observe/log';
import { devicesServed, readOpenFileLimit, RESERVED_FILES, watchOutOfFiles, type OpenFileLimit } from './observe/out-of-files';
import { journalForWorkers } from './journal/journal-ipc';
import { planWorkers } from './server/worker-count';
import { hostFacts } from './server/host-memory';
import { runPrimary, workerSink, type WorkerMessage } from './server/workers';

const USAGE = `Mender Gateway (open-source drop-in)
Usage: mender-gateway [flags]
       mender-gateway check-config [--online] [--config FILE]   (also: mender-gateway -t)
       mender-gateway cache list|evict|verify|prewarm ...
Flags:
      --config FILE       Configuration JSON FILE (default "${DEFAULT_CONFIG_PATH}")
  -h, --help              Show this help text.
      --log-level LEVEL   Log LEVEL, <${LEVELS.join('|')}> (default "info")
  -t, --check-config      Check the configuration and exit (as check-config).
      --version           Print version and exit.

Environment variables (HTTPS_ENABLED, UPSTREAM_SERVER_URL, ...) override the file; see docs/configuration.md.
`;

const EXIT_USAGE = 2;
const EXIT_START = 1;

function fail(lines: string[], code: number): void {
  for (const line of lines) process.stderr.write(`mender-gateway: ${line}\n`);
  process.exitCode = code;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(join(INSTALL_ROOT, 'package.json'), 'utf8')) as { version: string };
  return `mender-gateway ${pkg.version}\nnode ${process.version}\n`;
}

function parseFlags(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      'log-level': { type: 'string' },
      version: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      'check-config': { type: 'boolean', short: 't' },
    },
    strict: true,
    allowPositionals: false,
  }).values;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await run(argv);
  } catch (err) {
    // Anything unforeseen still ends as one line, not a stack trace.
    fail([(err as Error).message ?? String(err)], EXIT_START);
  }
  // A worker's IPC channel would keep it alive, neither starting nor failing, for ever.
  if (cluster.isWorker && process.exitCode) process.exit();
}

/** The operator's subcommands load only when named: a start never pays for them. */
const SUBCOMMANDS: Record<string, () => Promise<(argv: string[]) => Promise<number>>> = {
  'check-config': async () => (await import('./commands/check-config')).runCheckConfig,
  cache: async () => (await import('./commands/cache-command')).runCacheCommand,
};

async function run(argv: string[]): Promise<void> {
  const sub = argv[0] !== undefined ? SUBCOMMANDS[argv[0]] : undefined;
  if (sub) {
    process.exitCode = await (await sub())(argv.slice(1));
    return;
  }
  if (argv.includes('-t') || argv.includes('--check-config')) {
    // nginx -t: the same check as the subcommand, with the flags given beside it. Dispatched
    // before the start's flags are parsed: those do not know --online, --json.
    const rest = argv.filter((a) => a !== '-t' && a !== '--check-config');
    process.exitCode = await (await SUBCOMMANDS['check-config']!())(rest);
    return;
  }
  let flags: ReturnType<typeof parseFlags>;
  try {
    flags = parseFlags(argv);
  } catch (err) {
    return fail([`${(err as Error).message} (see --help)`], EXIT_USAGE);
  }
  if (flags.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (flags.version) {
    process.stdout.write(version());
    return;
  }
  // --log-level is applied before the config loads (product 2.0.0 fix), so loading can be debugged.
  const levelFlag = flags['log-level'];
  if (levelFlag !== undefined && !isLevel(levelFlag)) {
    return fail([`invalid --log-level ${JSON.stringify(levelFlag)}: must be one of ${LEVELS.join(', ')}`], EXIT_USAGE);
  }
  // Worker processes run this same function; their lines end with worker=N.
  const log = createLogger({ level: levelFlag ?? 'info', sink: cluster.isWorker ? workerSink(cluster.worker!.id) : undefined });

  let loaded: ReturnType<typeof loadConfig>;
  try {
    loaded = loadConfig({ file: flags.config, explicit: flags.config !== undefined, env: process.env });
  } catch (err) {
    if (err instanceof ConfigError) return fail(err.lines, EXIT_USAGE);
    throw err;
  }
  const { config } = loaded;
  log.setLevel(logLevelOf(config, levelFlag));
  if (loaded.file !== null) log.info(`loaded configuration file: ${loaded.file}`);
  else log.info(`no configuration file at ${flags.config ?? DEFAULT_CONFIG_PATH}: using the environment and defaults`);
  if (loaded.fromEnv.length > 0) log.info('configuration overridden by the environment', { variables: loaded.fromEnv.join(',') });
  for (const warning of loaded.warnings) log.warn(warning);
  if (log.enabled('debug')) log.debug(`effective configuration: ${JSON.stringify(redactedConfig(config))}`);

  const fileProblems = checkConfigFiles(config);
  if (fileProblems.length > 0) return fail(fileProblems, EXIT_USAGE);

  const fileLimit = await readOpenFileLimit();
  if (cluster.isPrimary) {
    const host = hostFacts();
    const plan = planWorkers(config, host);
    if ('error' in plan) return fail([plan.error], EXIT_USAGE);
    // The choice and what it was made from, so an operator sees why a box runs 1 or N processes.
    const mib = (n: number | null) => (n === null ? 'none' : `${Math.round(n / 2 ** 20)} MiB`);
    log.info(plan.count > 1 ? 'worker processes' : 'single process', {
      workers: plan.count,
      reason: plan.reason,
      cores: host.cores,
      memory_available: mib(host.available),
      cgroup_memory_limit: mib(host.cgroupLimit),
    });
    logOpenFileLimit(fileLimit, plan.count, log);
    if (plan.count > 1) return runCluster(config, plan.count, log);
  }

  // Handlers go in before the listeners open: a signal during start-up still shuts down cleanly.
  const stop = firstSignal(log);
  // SIGHUP: certificate, key, mTLS files and log level, without a restart.
  let running: RunningGateway | undefined;
  let current = config;
  const reloadOptions = { file: flags.config, explicit: flags.config !== undefined, env: process.env, levelFlag };
  process.on('SIGHUP', () => {
    if (running) current = reloadConfig(current, running, reloadOptions, log);
    else log.warn('SIGHUP during start-up: ignored');
  });
  let gateway: RunningGateway;
  try {
    // Loaded here, not at the top: a cluster primary serves nothing and never loads the
    // gateway's modules (the proxy, TLS, the cache: ~15 MB of RSS it would hold for nothing).
    const { startGateway } = await import('./gateway');
    watchOutOfFiles(log, fileLimit?.soft ?? null);
    gateway = await startGateway(config, log);
  } catch (err) {
    fail([(err as Error).message], EXIT_START);
    process.exit(EXIT_START); // a half-started gateway may hold handles; leave now
  }
  running = gateway;
  if (cluster.isWorker) process.send?.({ type: 'ready' } satisfies WorkerMessage);
  const signal = await stop;
  log.info('signal received: finishing requests in flight', { signal });
  try {
    await gateway.close(parseDuration(config.ShutdownTimeout));
  } catch (err) {
    log.error('shutdown failed', { err: err as Error });
    process.exit(EXIT_START);
  }
  // A worker's listeners are closed, but a connection the primary handed over just before
  // may still be on its way; answering it (refused, so the primary gives it to another
  // worker) needs this process alive a moment longer, or the connection hangs in the primary.
  if (cluster.isWorker) await new Promise((r) => setTimeout(r, 300));
  process.exit(0);
}

/** The primary of a cluster: the link secret made once, then the workers (lib/server/workers.ts). */
async function runCluster(config: Readonly<GatewayConfig>, count: number, log: Logger): Promise<void> {
  const proxy = config.Features.ArtifactsProxy;
  // A generated secret is written before any worker starts, so every worker signs alike.
  if (proxy.Enabled) await resolveLinkSecret(proxy.ArtifactsCache.SignatureSecret, proxy.ArtifactsCache.Path, log);
  // The report journal's writer is wired whatever this configuration says: workers replaced on
  // SIGUSR2 read theirs afresh. Its modules load only when a worker asks (journal-ipc.ts).
  const code = await runPrimary({ count, log, drainMs: parseDuration(config.ShutdownTimeout) + 5_000, service: journalForWorkers(log) });
  process.exit(code);
}

/** How many devices the open-file limit lets the gateway serve, warned about when it is few. */
function logOpenFileLimit(limit: OpenFileLimit | null, processes: number, log: Logger): void {
  if (limit === null) {
    log.warn('open-file limit unknown (no /proc/self/limits)');
    return;
  }
  const devices = Number.isFinite(limit.soft) ? devicesServed(limit.soft) * processes : Infinity;
  const fields = { soft: limit.soft, hard: limit.hard, devices_at_once: devices, rule: `(soft - ${RESERVED_FILES}) / 2 per process` };
  if (devices < 1000)
    log.warn('open-file limit serves fewer than 1,000 devices at once: raise it (systemd LimitNOFILE=, ulimit -n)', fields);
  else log.info('open-file limit', fields);
}

/**
 * Resolves on the first SIGTERM/SIGINT (or, in a worker, the primary's 'shutdown' message);
 * a second signal exits at once.
 */
function firstSignal(log: Logger): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let received = false;
    if (cluster.isWorker) {
      process.on('message', (m: WorkerMessage) => {
        if (m?.type !== 'shutdown' || received) return;
        received = true;
        resolve('SIGTERM');
      });
    }
    const onSignal = (signal: NodeJS.Signals) => {
      if (received) {
        log.warn('second signal: exiting at once', { signal });
        process.exit(signal === 'SIGINT' ? 130 : 143);
      }
      received = true;
      resolve(signal);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
