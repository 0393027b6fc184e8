import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { processTree } from '../process-stats';
import { REPO_ROOT, writeGatewayConfig } from '../gateway-process';

// The gateway of a soak: `node bin/gateway.js` as a child process on fixed ports (devices keep
// their addresses across kill -9 and restarts), at LogLevel info as shipped. Its output is not
// kept (half an hour of access-log lines would be the driver's memory): lines are counted by
// level and message, the last ones kept for an error report, and every line is searched for the
// secrets the soak knows.

export interface SoakGatewayOptions {
  dir: string;
  config: Record<string, unknown>;
  /** Extra environment (the stepped clock's LD_PRELOAD and its file). */
  env: NodeJS.ProcessEnv;
  /** Strings that must never appear in the log (passwords, tokens, the link secret). */
  secrets: () => string[];
}

export interface LogCounts {
  /** level → lines */
  levels: Map<string, number>;
  /** `level msg` → lines */
  messages: Map<string, number>;
  bytes: number;
}

const TAIL = 200;

export class SoakGateway {
  private child?: ChildProcess;
  private exited?: Promise<void>;
  readonly counts: LogCounts = { levels: new Map(), messages: new Map(), bytes: 0 };
  readonly tail: string[] = [];
  /** Lines that carried a secret (at most a few kept). */
  readonly leaks: string[] = [];
  /** The inspector's address of the running process (for a heap figure after a GC). */
  inspector?: string;
  starts = 0;
  /** performance.now() of the latest start */
  startedAt = 0;
  private readonly configFile: string;
  private readonly listeners: string[];

  constructor(private readonly opts: SoakGatewayOptions & { name: string }) {
    this.configFile = writeGatewayConfig(opts.dir, opts.config, `${opts.name}.conf`);
    const on = (key: string) => (opts.config[key] as { Enabled?: boolean } | undefined)?.Enabled === true;
    this.listeners = [...(on('HTTP') ? ['http'] : []), ...(on('HTTPS') ? ['https'] : []), 'metrics'];
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  pids(): number[] {
    return this.child?.pid && this.child.exitCode === null && this.child.signalCode === null ? processTree(this.child.pid) : [];
  }

  /** Start and wait until its listeners (those the configuration turns on) and the metrics listener answer. */
  async start(timeoutMs = 30_000): Promise<void> {
    this.starts++;
    this.startedAt = performance.now();
    this.inspector = undefined;
    const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'gateway.js'), '--config', this.configFile], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...this.opts.env, NODE_OPTIONS: '--inspect=127.0.0.1:0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const kill = (): void => void child.kill('SIGKILL');
    process.on('exit', kill);
    this.exited = new Promise((done) =>
      child.on('exit', () => {
        process.off('exit', kill);
        done();
      }),
    );
    const seen = new Set<string>();
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the gateway did not start within ${timeoutMs} ms\n${this.tail.join('\n')}`)),
        timeoutMs,
      );
      const check = (line: string): void => {
        const listening = /msg="?listening"?.*\blistener=(\w+)/.exec(line);
        if (listening) seen.add(listening[1]);
        if (/msg="?metrics and status page listening/.test(line)) seen.add('metrics');
        const inspector = /Debugger listening on (ws:\/\/\S+)/.exec(line);
        if (inspector) this.inspector = inspector[1];
        if (this.listeners.every((l) => seen.has(l))) {
          clearTimeout(timer);
          resolve();
        }
      };
      void this.exited?.then(() => {
        clearTimeout(timer);
        reject(new Error(`the gateway exited before listening\n${this.tail.join('\n')}`));
      });
      this.readLines(child, check);
    });
    await ready;
  }

  private readLines(child: ChildProcess, check: (line: string) => void): void {
    for (const stream of [child.stdout!, child.stderr!]) {
      let partial = '';
      stream.setEncoding('utf8');
      stream.on('data', (text: string) => {
        partial += text;
        const lines = partial.split('\n');
        partial = lines.pop()!;
        for (const line of lines) this.count(line, check);
      });
    }
  }

  private count(line: string, check: (line: string) => void): void {
    this.counts.bytes += Buffer.byteLength(line) + 1;
    const level = /\blevel=(\w+)/.exec(line)?.[1] ?? 'other';
    const msg = /\bmsg=(?:"([^"]*)"|(\S+))/.exec(line);
    const key = `${level} ${msg?.[1] ?? msg?.[2] ?? line.slice(0, 40)}`;
    this.counts.levels.set(level, (this.counts.levels.get(level) ?? 0) + 1);
    this.counts.messages.set(key, (this.counts.messages.get(key) ?? 0) + 1);
    this.tail.push(line);
    if (this.tail.length > TAIL) this.tail.shift();
    if (this.leaks.length < 5 && this.opts.secrets().some((s) => s !== '' && line.includes(s))) this.leaks.push(line.slice(0, 300));
    check(line);
  }

  reload(): void {
    this.child?.kill('SIGHUP');
  }

  /** kill -9, as a power cut or the OOM killer would: nothing is flushed, nothing closed. */
  async kill9(): Promise<void> {
    this.child?.kill('SIGKILL');
    await this.exited;
  }

  async stop(): Promise<void> {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), 15_000);
    await this.exited;
    clearTimeout(timer);
  }
}
