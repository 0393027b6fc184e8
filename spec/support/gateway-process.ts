import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { processTree } from './process-stats';

// The gateway as a user runs it: `node bin/gateway.js --config FILE`, a child process. Its
// listeners are configured on port 0; the ports are read from the `msg="listening"` lines it logs.

/** The repository root (this file runs from dist/spec/support or dist/fixtures/...). */
export const REPO_ROOT = resolve(__dirname, '..', '..', '..');
const GATEWAY_BIN = join(REPO_ROOT, 'bin', 'gateway.js');

export interface GatewayProcess {
  process: ChildProcess;
  /** listener name ('http' | 'https') → 'host:port' */
  listeners: Record<string, string>;
  /** e.g. 'https://127.0.0.1:PORT' */
  url(listener?: 'http' | 'https'): string;
  /** Everything the gateway logged so far (stderr + stdout). */
  output(): string;
  /** SIGTERM, wait for exit; resolves to the exit code (null if killed by a signal). */
  stop(timeoutMs?: number): Promise<number | null>;
}

export interface StartGatewayOptions {
  configFile: string;
  logLevel?: string;
  /** Listeners to wait for before resolving. Default: ['https']. */
  waitFor?: ('http' | 'https')[];
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Own process group: a Ctrl-C on the terminal reaches only the parent, which stops it. */
  detached?: boolean;
  /** Start under `ulimit -n N` (the shell execs node, so the pid is the gateway's). */
  openFileLimit?: number;
  /** The `node` binary to run it with (default: the one running this process). */
  node?: string;
}

/** Write a gateway config (the product's mender-gateway.conf JSON shape) into dir. */
export function writeGatewayConfig(dir: string, config: Record<string, unknown>, name = 'mender-gateway.conf'): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  return path;
}

const LISTENING = /msg="?listening"?.*\blistener=(\w+).*\baddress=(\S+)/;

export async function startGateway(opts: StartGatewayOptions): Promise<GatewayProcess> {
  const args = [GATEWAY_BIN, '--config', opts.configFile];
  if (opts.logLevel) args.push('--log-level', opts.logLevel);
  const node = opts.node ?? process.execPath;
  const [command, argv] = opts.openFileLimit
    ? ['/bin/sh', ['-c', `ulimit -n ${opts.openFileLimit} && exec "$0" "$@"`, node, ...args]]
    : [node, args];
  const child = spawn(command, argv, {
    cwd: REPO_ROOT,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.detached ?? false,
  });
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.on('exit', killOnExit);
  const chunks: string[] = [];
  const listeners: Record<string, string> = {};
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((done) =>
    child.on('exit', (code) => {
      exitCode = code;
      process.off('exit', killOnExit);
      done(code);
    }),
  );
  const want = opts.waitFor ?? ['https'];

  await new Promise<void>((ready, fail) => {
    let partial = '';
    const timer = setTimeout(
      () => fail(new Error(`gateway did not report ${want.join('+')} listening within ${opts.timeoutMs ?? 10_000} ms\n${chunks.join('')}`)),
      opts.timeoutMs ?? 10_000,
    );
    const check = (): void => {
      if (want.every((l) => listeners[l])) {
        clearTimeout(timer);
        ready();
      }
    };
    child.stderr!.setEncoding('utf8').on('data', (text: string) => {
      chunks.push(text);
      partial += text;
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        const m = LISTENING.exec(line);
        if (m) listeners[m[1]] = m[2].replace(/^"|"$/g, '');
      }
      check();
    });
    child.stdout!.setEncoding('utf8').on('data', (text: string) => chunks.push(text));
    void exited.then((code) => {
      clearTimeout(timer);
      fail(new Error(`gateway exited (${code}) before listening\n${chunks.join('')}`));
    });
  });

  return {
    process: child,
    listeners,
    url(listener = 'https') {
      const address = listeners[listener];
      if (!address) throw new Error(`gateway has no ${listener} listener`);
      return `${listener}://${address}`;
    },
    output: () => chunks.join(''),
    async stop(timeoutMs = 10_000) {
      if (exitCode !== undefined) return exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

export interface QuietGateway {
  proc: GatewayProcess;
  /** Worker processes the gateway chose (its `worker processes` line; 1 when it runs alone). */
  workers: number;
  /** The gateway's processes: the primary first, then any workers. */
  pids(): number[];
}

/** The gateway for a measurement: started at LogLevel info (its `listening` lines give the ports),
 * then turned to warn through SIGHUP, as an operator would, so that no access-log line per request
 * is part of what is measured. `config` is written to `dir` as `<name>.conf`. */
export async function startQuietGateway(
  dir: string,
  name: string,
  config: Record<string, unknown>,
  opts: Omit<StartGatewayOptions, 'configFile' | 'logLevel'> & { nodeOptions?: string } = {},
): Promise<QuietGateway> {
  const file = `${name}.conf`;
  const { nodeOptions, ...start } = opts;
  const env = { ...(opts.env ?? process.env), ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}) };
  const proc = await startGateway({ ...start, env, configFile: writeGatewayConfig(dir, { ...config, LogLevel: 'info' }, file) });
  writeGatewayConfig(dir, { ...config, LogLevel: 'warn' }, file);
  proc.process.kill('SIGHUP');
  await new Promise((r) => setTimeout(r, 500));
  return {
    proc,
    workers: Number(/msg="?worker processes"?.*\bworkers=(\d+)/.exec(proc.output())?.[1] ?? 1),
    pids: () => processTree(proc.process.pid!),
  };
}
