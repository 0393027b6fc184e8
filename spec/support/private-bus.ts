import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// A private system bus for one mender 3.4 client and its mender-connect (real-client.md §5): the
// client's bus name is fixed, so each client needs a bus of its own. The policies of the
// installed packages (io.mender.AuthenticationManager.conf) come in by includedir.

export interface PrivateBus {
  address: string;
  stop(): Promise<void>;
}

export async function startPrivateBus(dir: string): Promise<PrivateBus> {
  const socket = join(dir, 'bus.sock');
  const config = join(dir, 'bus.conf');
  writeFileSync(
    config,
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=${socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
  <includedir>/usr/share/dbus-1/system.d</includedir>
</busconfig>
`,
  );
  const child: ChildProcess = spawn('dbus-daemon', ['--config-file', config, '--nofork', '--nopidfile'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let said = '';
  child.stderr?.on('data', (c: Buffer) => (said += c.toString()));
  const kill = (): void => void child.kill('SIGKILL');
  process.on('exit', kill);
  for (let i = 0; i < 100 && !existsSync(socket); i++) {
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!existsSync(socket)) {
    child.kill('SIGKILL');
    throw new Error(`private dbus-daemon did not come up: ${said.trim() || `exit ${child.exitCode}`}`);
  }
  return {
    address: `unix:path=${socket}`,
    async stop() {
      process.off('exit', kill);
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
