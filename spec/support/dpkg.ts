import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// dpkg for the release-package test: other test processes may hold the dpkg lock for a moment,
// so a locked database is waited for; the package's Depends on nodejs (>= 20) is met by a
// stand-in package when this machine's Node 20 was not installed by dpkg.

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], timeoutMs = 60_000): Run {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return { status: r.status, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

/** dpkg with its arguments, retried for up to 60 s while another process holds the lock. */
export function dpkg(args: string[]): Run {
  const end = Date.now() + 60_000;
  for (;;) {
    const r = run('dpkg', args);
    if (r.status === 0 || !/lock/i.test(r.stderr) || Date.now() > end) return r;
    spawnSync('sleep', ['1']);
  }
}

export function installedVersion(pkg: string): string | null {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format, not a template
  const r = run('dpkg-query', ['-W', '-f=${Status} ${Version}', pkg]);
  const m = /^install ok installed (\S+)$/.exec(r.stdout.trim());
  return r.status === 0 && m ? m[1] : null;
}

export function versionAtLeast(version: string, min: string): boolean {
  return run('dpkg', ['--compare-versions', version, 'ge', min]).status === 0;
}

/** Why the test cannot run here, or null. */
export function cannotInstall(): string | null {
  if (process.getuid?.() !== 0) return 'not root: dpkg -i needs root';
  for (const tool of ['dpkg', 'dpkg-deb', 'dpkg-query'])
    if (run('sh', ['-c', `command -v ${tool}`]).status !== 0) return `no ${tool} on this machine`;
  if (installedVersion('mender-gateway') !== null) return 'a mender-gateway package is already installed: the test does not replace it';
  return null;
}

/**
 * An equivs-style empty `nodejs` package at this Node's version, declaring what is already there
 * (process.execPath, found by the shim's `#!/usr/bin/env node`). Built in dir; returns its path.
 */
export function buildNodejsStandIn(dir: string): string {
  const root = join(dir, 'nodejs-stand-in');
  mkdirSync(join(root, 'DEBIAN'), { recursive: true });
  writeFileSync(
    join(root, 'DEBIAN', 'control'),
    [
      'Package: nodejs',
      `Version: ${process.versions.node}-0standin`,
      'Architecture: all',
      'Maintainer: release-package test <noreply@open-mender-gateway.invalid>',
      `Description: stand-in for the Node.js at ${process.execPath}`,
      ' Installed by spec/integration/release-package.test.ts and purged by it.',
      '',
    ].join('\n'),
  );
  const deb = join(dir, 'nodejs-stand-in.deb');
  const r = run('dpkg-deb', ['--root-owner-group', '--build', root, deb]);
  if (r.status !== 0) throw new Error(`dpkg-deb: ${r.stderr}`);
  return deb;
}
