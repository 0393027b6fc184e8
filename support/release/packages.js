'use strict';
// The tarball, the .deb and the .ipk, from the staged tree (stage.js), with standard tools only:
// tar, gzip and dpkg-deb. Owners are root and times fixed, so a rebuild gives the same files.
const { execFileSync } = require('node:child_process');
const { chmodSync, cpSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

// Every file dated from the last commit (or SOURCE_DATE_EPOCH): a rebuild of a commit is byte-identical.
function sourceDateEpoch() {
  if (process.env.SOURCE_DATE_EPOCH) return process.env.SOURCE_DATE_EPOCH;
  try {
    return (
      execFileSync('git', ['log', '-1', '--format=%ct'], {
        cwd: __dirname,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim() || '0'
    );
  } catch {
    return '0';
  }
}
const EPOCH = sourceDateEpoch();
const TAR_OWNER = ['--owner=0', '--group=0', '--numeric-owner', '--sort=name', `--mtime=@${EPOCH}`];
const OPENWRT_USER = 'mender-gateway';
const MAINTAINER = 'Open Mender Gateway maintainers <noreply@open-mender-gateway.invalid>';
const DESCRIPTION =
  'Open-source drop-in Mender Gateway\n Device API proxy, artifact proxy and cache, mTLS provisioning for Mender\n devices, in one Node.js file (no node_modules).';

function tarGz(out, cwd, entries) {
  execFileSync('tar', ['-I', 'gzip -n9', '-cf', out, ...TAR_OWNER, '-C', cwd, ...entries]);
}

function duKiB(dir) {
  let bytes = 0;
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.isFile()) bytes += statSync(join(d, e.name)).size;
    }
  };
  walk(dir);
  return Math.ceil(bytes / 1024);
}

// The package's configuration files: dpkg and opkg keep an edited one on upgrade.
const CONFFILES = ['/etc/mender/mender-gateway.conf', '/etc/default/mender-gateway'];

/** /usr/lib/mender-gateway, /usr/bin/mender-gateway, the config and the environment file, under root. */
function installTree(stage, root) {
  const lib = join(root, 'usr', 'lib', 'mender-gateway');
  mkdirSync(lib, { recursive: true });
  for (const f of ['bin', 'lib', 'package.json']) cpSync(join(stage, f), join(lib, f), { recursive: true });
  mkdirSync(join(root, 'usr', 'bin'), { recursive: true });
  symlinkSync('../lib/mender-gateway/bin/mender-gateway', join(root, 'usr', 'bin', 'mender-gateway'));
  mkdirSync(join(root, 'etc', 'mender'), { recursive: true });
  // It may hold passwords: never world-readable, not even between unpacking and postinst
  // (which gives it to the service's group).
  cpSync(join(stage, 'mender-gateway.conf'), join(root, 'etc', 'mender', 'mender-gateway.conf'));
  chmodSync(join(root, 'etc', 'mender', 'mender-gateway.conf'), 0o640);
  // Secrets as environment variables (MTLS_MENDER_PASSWORD, ...): read by root only, since
  // systemd and procd read it before the gateway starts; comments only as shipped.
  mkdirSync(join(root, 'etc', 'default'), { recursive: true });
  cpSync(join(stage, 'support', 'mender-gateway.default'), join(root, 'etc', 'default', 'mender-gateway'));
  chmodSync(join(root, 'etc', 'default', 'mender-gateway'), 0o600);
}

function writeTarball(stage, name, outDir) {
  const out = join(outDir, `${name}.tar.gz`);
  tarGz(out, join(stage, '..'), [name]);
  return out;
}

function buildDeb(stage, version, work, outDir) {
  const root = join(work, 'deb');
  rmSync(root, { recursive: true, force: true });
  installTree(stage, root);
  mkdirSync(join(root, 'lib', 'systemd', 'system'), { recursive: true });
  cpSync(join(stage, 'support', 'mender-gateway.service'), join(root, 'lib', 'systemd', 'system', 'mender-gateway.service'));
  mkdirSync(join(root, 'usr', 'share', 'doc', 'mender-gateway'), { recursive: true });
  for (const f of ['INSTALL', 'THIRD-PARTY-LICENSES']) cpSync(join(stage, f), join(root, 'usr', 'share', 'doc', 'mender-gateway', f));
  const control = join(root, 'DEBIAN');
  mkdirSync(control);
  writeFileSync(
    join(control, 'control'),
    [
      'Package: mender-gateway',
      `Version: ${version}`,
      'Architecture: all',
      `Maintainer: ${MAINTAINER}`,
      `Installed-Size: ${duKiB(root)}`,
      // Debian 12's nodejs is 18: NodeSource's nodejs 20 satisfies this (INSTALL says how).
      'Depends: nodejs (>= 20), passwd',
      'Section: net',
      'Priority: optional',
      `Description: ${DESCRIPTION}`,
      '',
    ].join('\n'),
  );
  writeFileSync(join(control, 'conffiles'), `${CONFFILES.join('\n')}\n`);
  for (const script of ['postinst', 'prerm', 'postrm']) {
    cpSync(join(__dirname, 'debian', script), join(control, script));
    chmodSync(join(control, script), 0o755);
  }
  const out = join(outDir, `mender-gateway_${version}_all.deb`);
  // dpkg-deb clamps file times to SOURCE_DATE_EPOCH; the staged files are newer.
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', root, out], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, SOURCE_DATE_EPOCH: EPOCH },
  });
  return out;
}

/** An OpenWrt package: a tar.gz of debian-binary, control.tar.gz and data.tar.gz, as opkg-build makes. */
function buildIpk(stage, version, work, outDir) {
  const dir = join(work, 'ipk');
  rmSync(dir, { recursive: true, force: true });
  const data = join(dir, 'data');
  installTree(stage, data);
  cpSync(join(stage, 'THIRD-PARTY-LICENSES'), join(data, 'usr', 'lib', 'mender-gateway', 'THIRD-PARTY-LICENSES'));
  mkdirSync(join(data, 'etc', 'init.d'), { recursive: true });
  cpSync(join(stage, 'support', 'openwrt', 'mender-gateway.init'), join(data, 'etc', 'init.d', 'mender-gateway'));
  mkdirSync(join(data, 'etc', 'capabilities'), { recursive: true });
  cpSync(join(stage, 'support', 'openwrt', 'mender-gateway.capabilities.json'), join(data, 'etc', 'capabilities', 'mender-gateway.json'));
  const control = join(dir, 'control');
  mkdirSync(control);
  writeFileSync(
    join(control, 'control'),
    [
      'Package: mender-gateway',
      `Version: ${version}`,
      'Depends: node',
      'Architecture: all',
      `Maintainer: ${MAINTAINER}`,
      `Installed-Size: ${duKiB(data) * 1024}`,
      'Section: net',
      // OpenWrt's way to a service user (a package Makefile's USERID): add_group_and_user of
      // /lib/functions.sh reads this field and writes /etc/passwd, /etc/group and /etc/shadow
      // itself, so no shadow-useradd is needed; the ids are the next free ones.
      `Require-User: ${OPENWRT_USER}:${OPENWRT_USER}`,
      `Description: ${DESCRIPTION.split('\n')[0]}`,
      '',
    ].join('\n'),
  );
  writeFileSync(join(control, 'conffiles'), `${CONFFILES.join('\n')}\n`);
  cpSync(join(__dirname, 'openwrt', 'postinst'), join(control, 'postinst'));
  chmodSync(join(control, 'postinst'), 0o755);
  writeFileSync(
    join(control, 'prerm'),
    '#!/bin/sh\n[ -n "$IPKG_INSTROOT" ] || { /etc/init.d/mender-gateway stop; /etc/init.d/mender-gateway disable; }\nexit 0\n',
    { mode: 0o755 },
  );
  const pkg = join(dir, 'pkg');
  mkdirSync(pkg);
  writeFileSync(join(pkg, 'debian-binary'), '2.0\n');
  tarGz(join(pkg, 'control.tar.gz'), control, ['.']);
  tarGz(join(pkg, 'data.tar.gz'), data, ['.']);
  const out = join(outDir, `mender-gateway_${version}_all.ipk`);
  tarGz(out, pkg, ['./debian-binary', './data.tar.gz', './control.tar.gz']);
  return out;
}

module.exports = { writeTarball, buildDeb, buildIpk, MAINTAINER, CONFFILES };
