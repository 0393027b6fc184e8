import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import * as path from 'node:path';
import { processTree } from '../../spec/support/process-stats';
import { nginxConf, type NginxConfOptions } from './nginx-conf';

// Debian's nginx, run in the foreground from a temp prefix (no root paths, no system service),
// as a child of the bench: stopped with SIGQUIT→SIGTERM→SIGKILL, the master takes its workers.

export interface NginxProcess {
  pid: number;
  /** The master and its workers (for RSS sampling). */
  workerPids(): number[];
  stop(): Promise<void>;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Debian's nginx (/usr/sbin is not on an ordinary user's PATH there), or BENCH_NGINX. */
export const NGINX = process.env.BENCH_NGINX ?? (existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx');

export async function startNginx(binary: string, o: NginxConfOptions): Promise<NginxProcess> {
  // As root, nginx's workers would drop to nobody and could not write the 0700 temp prefix.
  const text = nginxConf({ user: process.getuid?.() === 0 ? 'root' : undefined, ...o });
  return startNginxWith(binary, o.prefix, text, [o.httpPort, o.httpsPort, o.mtlsPort, o.mtlsResumePort, o.passPort]);
}

/** nginx with a given configuration text, ready once every port in `ports` accepts. */
export async function startNginxWith(binary: string, prefix: string, text: string, ports: number[]): Promise<NginxProcess> {
  const o = { prefix };
  for (const d of ['tmp/body', 'tmp/proxy', 'tmp/fastcgi', 'tmp/uwsgi', 'tmp/scgi', 'cache'])
    mkdirSync(path.join(o.prefix, d), { recursive: true });
  const conf = path.join(o.prefix, 'nginx.conf');
  writeFileSync(conf, text);
  const child: ChildProcess = spawn(binary, ['-p', o.prefix, '-c', conf, '-e', path.join(o.prefix, 'error.log')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  // If the bench dies abruptly (a closed stdout pipe, an exception), SIGKILL to the master
  // alone would orphan its workers: take the whole tree.
  const killOnExit = () => {
    for (const pid of processTree(child.pid!).reverse()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  process.on('exit', killOnExit);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      process.off('exit', killOnExit);
      resolve();
    }),
  );
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited (${child.exitCode}): ${stderr}${readErrorLog(o.prefix)}`);
    if ((await Promise.all(ports.map(portOpen))).every(Boolean)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`nginx did not listen within 10 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    pid: child.pid!,
    workerPids: () => processTree(child.pid!),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function readErrorLog(prefix: string): string {
  try {
    return readFileSync(path.join(prefix, 'error.log'), 'utf8').slice(-2000);
  } catch {
    return '';
  }
}
