import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, readFileSync, writeFileSync, closeSync } from 'node:fs';
import { join } from 'node:path';

// A real mender-connect daemon (Debian's package) beside a real client: it takes the device's
// JWT and the URL to dial (the client's local forwarder) over that client's D-Bus, and keeps
// one WebSocket to deviceconnect open. Its config allows several shells per user (the default
// is one) and reconnects after 1 s (the default is 5 s).

export interface MenderConnect {
  logFile: string;
  process: ChildProcess;
  /** Last lines of its log, device tokens masked. */
  logTail(lines?: number): string;
  stop(): Promise<void>;
}

export function menderConnectUnavailable(): string | null {
  if (spawnSync('sh', ['-c', 'command -v mender-connect']).status !== 0)
    return 'mender-connect is not installed; as root: apt-get install mender-connect';
  return null;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

/** Starts mender-connect on the D-Bus at `busAddress`, with its config and log in `dir`. */
export function startMenderConnect(opts: { dir: string; busAddress: string; name?: string }): MenderConnect {
  const name = opts.name ?? 'mender-connect';
  const config = join(opts.dir, `${name}.conf`);
  writeFileSync(
    config,
    JSON.stringify(
      { ShellCommand: '/bin/sh', ShellArguments: [], User: 'root', Sessions: { MaxPerUser: 20 }, ReconnectIntervalSeconds: 1 },
      null,
      2,
    ),
  );
  const logFile = join(opts.dir, `${name}.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn(
    'mender-connect',
    [
      ...(process.env.MENDER_CONNECT_DEBUG ? ['--debug'] : []),
      '--config',
      config,
      '--fallback-config',
      join(opts.dir, `${name}.fallback.conf`),
      'daemon',
    ],
    {
      env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: opts.busAddress },
      stdio: ['ignore', fd, fd],
    },
  );
  closeSync(fd);
  live.add(child);
  child.once('exit', () => live.delete(child));
  return {
    logFile,
    process: child,
    logTail(lines = 15) {
      if (!existsSync(logFile)) return '(no log)';
      return readFileSync(logFile, 'utf8')
        .split('\n')
        .slice(-lines)
        .join('\n')
        .replace(/(Bearer\s+|token[=: ]+)[\w.-]{20,}/gi, '$1<redacted>');
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * The bytes of a file an upload put on the device. mender-connect acks the last chunk before it
 * chmods, closes and renames its temporary file into place (session/filetransfer.go), so the
 * file appears a moment after uploadFile() resolves.
 */
export async function uploadedFile(path: string, timeoutMs = 5_000): Promise<Buffer> {
  const end = Date.now() + timeoutMs;
  while (!existsSync(path)) {
    if (Date.now() > end) throw new Error(`${path} did not appear within ${timeoutMs} ms of the upload's last ack`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return readFileSync(path);
}
