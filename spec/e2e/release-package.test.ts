import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, sign } from 'node:crypto';
import {
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startMenderServer, type MenderServer } from '../../fixtures/mender-server';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import { cachedRoot, cannotDebootstrap, cannotQemuArm64, openRoot, run, type DebianRoot } from '../support/debian-root';
import { makeCrl } from '../support/device-certs';
import { REPO_ROOT } from '../support/gateway-process';
import { makeTlsMaterial } from '../support/tls-material';

// The packages `make release` builds, tested where users install them: clean Debian 12 and 13
// roots made by debootstrap from Debian's packages (no Node, no third-party repository; cached,
// see spec/support/debian-root.ts), entered with chroot. In each: `dpkg -i` of the amd64 .deb
// with nothing else installed, the installed command, the shipped configuration, the gateway
// started as the unit starts it (its user, its environment) serving a device's authentication
// and `deployments/next` against the Mender server emulator on 127.0.0.1, then `dpkg --purge`
// leaving the root as it was. The arm64 package's binary runs under qemu-user on a Debian arm64
// sysroot. This machine itself gets no package, user or file outside the cache and temp dirs.

const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const SUITES = ['bookworm', 'trixie'];
const BIN = '/usr/bin/mender-gateway';
const CONF = '/etc/mender/mender-gateway.conf';
const UNIT = '/lib/systemd/system/mender-gateway.service';
// The arm64 gateway runs on this machine: none of the test process's environment (c8's
// NODE_V8_COVERAGE, NODE_OPTIONS) reaches it.
const QEMU_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };
// Root, debootstrap and qemu-user-static are prerequisites of `make test`'s end-to-end part (it
// installs them as root on Debian, support/test-deps.sh): without them these tests fail with the
// reason in one line; they do not pass by skipping.
const cannot = cannotDebootstrap();
const cannotQemu = cannotQemuArm64();

// RELEASE_PACKAGES=DIR tests the packages already there (`make release`'s release/) instead of
// building them into a temporary directory.
const PREBUILT = process.env.RELEASE_PACKAGES;
let released: string | undefined = PREBUILT;
/** `node support/release/build-release.js DIR` once for the file; the directory of the packages. */
function release(): string {
  if (released) return released;
  const dir = mkdtempSync(join(tmpdir(), 'gw-release-'));
  const t = Date.now();
  const r = run(process.execPath, [join(REPO_ROOT, 'support', 'release', 'build-release.js'), dir], 840_000);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  console.log(`# release-package: build-release.js ${((Date.now() - t) / 1000).toFixed(1)} s`);
  released = dir;
  return dir;
}
const deb = (arch: string) => join(release(), `mender-gateway_${VERSION}_${arch}.deb`);

let emulator: { server: MenderServer; store: S3Store } | undefined;
async function menderServer(): Promise<MenderServer> {
  if (!emulator) {
    const store = await startS3Store();
    emulator = { store, server: await startMenderServer({ store, autoAccept: true }) };
  }
  return emulator.server;
}

// The build (xz-compressed packages with a ~110 MB runtime each) can outlast a test's timeout
// on a loaded 2-core machine: done once, first, under its own bound.
before(
  () => {
    if (cannot) assert.fail(`the release packages cannot be tested here: ${cannot}`);
    release();
  },
  { timeout: 900_000 },
);

after(async () => {
  await emulator?.server.close();
  await emulator?.store.close();
  if (released && released !== PREBUILT) rmSync(released, { recursive: true, force: true });
});

function request(url: string, method: string, headers: Record<string, string>, body?: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method, headers: body ? { ...headers, 'Content-Length': String(body.length) } : headers, agent: false },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Resolves with the HTTP listener's address once the child logs `listening`. */
function listening(child: ChildProcess, timeoutMs: number): Promise<{ address: string; output: () => string }> {
  let text = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening" within ${timeoutMs / 1000} s:\n${text}`)), timeoutMs);
    const onData = (chunk: string) => {
      text += chunk;
      const m = /msg="?listening"?.*\blistener=http\b.*\baddress=(\S+)/.exec(text);
      if (!m) return;
      clearTimeout(timer);
      resolve({ address: m[1].replace(/"/g, ''), output: () => text });
    };
    child.stderr!.setEncoding('utf8').on('data', onData);
    child.stdout!.setEncoding('utf8').on('data', onData);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`exited ${code ?? signal} before listening:\n${text}`));
    });
  });
}

/** SIGTERM, then the exit code; SIGKILL after timeoutMs. */
function stop(child: ChildProcess, timeoutMs = 30_000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    child.kill('SIGTERM');
  });
}

/**
 * A device's first requests through the gateway at address: an Ed25519-signed auth request (the
 * emulator accepts it), then `deployments/next` with the token (204: nothing to install).
 */
async function deviceThrough(address: string, server: MenderServer, mac: string, output: () => string): Promise<void> {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const body = Buffer.from(
    JSON.stringify({ id_data: JSON.stringify({ mac }), pubkey: publicKey.export({ type: 'spki', format: 'pem' }).toString() }) + '\n',
  );
  const auth = await request(
    `http://${address}/api/devices/v1/authentication/auth_requests`,
    'POST',
    { 'Content-Type': 'application/json', 'X-MEN-Signature': sign(null, body, privateKey).toString('base64') },
    body,
  );
  assert.equal(auth.status, 200, `${auth.text}\n${output()}`);
  assert.match(auth.text, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'a JWT');
  const next = await request(`http://${address}/api/devices/v1/deployments/device/deployments/next?artifact_name=a&device_type=t`, 'GET', {
    Authorization: `Bearer ${auth.text}`,
  });
  assert.equal(next.status, 204, `${next.text}\n${output()}`);
  const device = server.deviceByIdentity({ mac });
  assert.ok(device, 'the emulator knows the device');
  assert.ok(
    server.calls.some((c) => c.path === '/api/devices/v1/authentication/auth_requests' && c.status === 200 && c.deviceId === device.id),
    'the emulator answered its auth request',
  );
  assert.ok(
    server.calls.some((c) => c.path.startsWith('/api/devices/v1/deployments/device/deployments/next') && c.deviceId === device.id),
    'the emulator answered its next',
  );
}

/** The shipped configuration as the test needs it: the emulator upstream, HTTP on loopback. */
function editConfig(text: string, upstream: string): string {
  const conf = JSON.parse(text) as { HTTP: Record<string, unknown>; UpstreamServer: Record<string, unknown> };
  conf.UpstreamServer.URL = upstream;
  conf.HTTP.Listen = '127.0.0.1:0';
  return `${JSON.stringify(conf, null, 2)}\n`;
}

/** Every path of the root (relative), but the mounts, /tmp and what dpkg itself logs and records. */
function snapshot(root: string): Set<string> {
  const skip = new Set(['proc', 'dev', 'sys', 'tmp', 'run', 'var/lib/dpkg', 'var/log/dpkg.log', 'var/log/alternatives.log']);
  const paths = new Set<string>();
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      const rel = relative(root, path);
      if (skip.has(rel)) continue;
      paths.add(rel);
      if (e.isDirectory()) walk(path);
    }
  };
  walk(root);
  return paths;
}

/** The [Service] settings the test starts the gateway with, as systemd would. */
function unitSettings(text: string): { user: string; env: Record<string, string>; exec: string[]; dirs: [string, string][] } {
  const get = (key: string) => [...text.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1].trim());
  const env: Record<string, string> = {};
  for (const line of get('Environment')) {
    const [k, ...v] = line.split('=');
    env[k] = v.join('=');
  }
  return {
    user: get('User')[0],
    env,
    exec: get('ExecStart')[0].split(/\s+/),
    // systemd's default mode is 0755
    dirs: [
      ...get('CacheDirectory').map((d): [string, string] => [`/var/cache/${d}`, get('CacheDirectoryMode')[0] ?? '0755']),
      ...get('StateDirectory').map((d): [string, string] => [`/var/lib/${d}`, get('StateDirectoryMode')[0] ?? '0755']),
    ],
  };
}

for (const suite of SUITES) {
  describe(`the amd64 .deb on a clean Debian ${suite} (debootstrap minbase, no Node)`, { timeout: 900_000 }, () => {
    let root: DebianRoot;
    let pristine: Set<string>;
    let passwd: string[];
    let files: string[] = [];
    let gateway: ChildProcess | undefined;

    before(() => {
      const t = Date.now();
      const opened = openRoot(suite);
      root = opened;
      const { stamp, built } = opened.cached;
      console.log(
        `# release-package: ${suite} root ${built ? `made by debootstrap in ${stamp.seconds.toFixed(1)} s` : `cached ${stamp.built}`}, copied in ${opened.copySeconds.toFixed(1)} s (open ${((Date.now() - t) / 1000).toFixed(1)} s)`,
      );
      pristine = snapshot(root.dir);
      passwd = ['passwd', 'group', 'shadow', 'gshadow'].map((f) => readFileSync(root.path(`/etc/${f}`), 'utf8'));
      assert.notEqual(root.run(['sh', '-c', 'command -v node || command -v nodejs']).status, 0, 'no Node in the clean root');
    });

    after(async () => {
      if (gateway) await stop(gateway, 5_000);
      root?.close();
    });

    it('dpkg -i installs the package with nothing else: its Depends are all in a minbase system', () => {
      const inside = `/tmp/mender-gateway_${VERSION}_amd64.deb`;
      writeFileSync(root.path(inside), readFileSync(deb('amd64')));
      const r = root.run(['dpkg', '-i', inside], { timeoutMs: 120_000 });
      assert.equal(r.status, 0, r.stdout + r.stderr);
      // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format, not a template
      const status = root.run(['dpkg-query', '-W', '-f=${Status} ${Version} ${Architecture}', 'mender-gateway']);
      assert.equal(status.stdout, `install ok installed ${VERSION} amd64`);
      files = root
        .run(['dpkg', '-L', 'mender-gateway'])
        .stdout.split('\n')
        .filter((f) => f.startsWith('/') && f !== '/.');
    });

    it('installs the command, its runtime, the bundle, the unit, and the configuration as a conffile readable by the service user', () => {
      for (const f of [
        BIN,
        '/usr/lib/mender-gateway/lib/mender-gateway.js',
        '/usr/lib/mender-gateway/lib/observe/status-page/assets/index.html',
        // The status page's chart library, copied from its npm package (no node_modules here).
        '/usr/lib/mender-gateway/lib/observe/status-page/assets/uplot/uPlot.iife.min.js',
        '/usr/lib/mender-gateway/lib/observe/status-page/assets/uplot/uPlot.min.css',
        UNIT,
        CONF,
      ])
        assert.ok(files.includes(f), `${f} in dpkg -L`);
      // No node_modules but koffi (malloc_trim, lib/server/memory-return.ts), with this architecture's binary only.
      const carried = files.filter((f) => f.includes('node_modules'));
      assert.ok(
        carried.every(
          (f) => f === '/usr/lib/mender-gateway/lib/node_modules' || f.startsWith('/usr/lib/mender-gateway/lib/node_modules/koffi'),
        ),
        carried.join('\n'),
      );
      assert.ok(carried.includes('/usr/lib/mender-gateway/lib/node_modules/koffi/build/koffi/linux_x64/koffi.node'), carried.join('\n'));
      assert.ok(!carried.some((f) => f.includes('arm64')), carried.join('\n'));
      assert.ok(
        files.some((f) => f.startsWith('/usr/lib/mender-gateway/') && isElf(root.path(f), 62)),
        'an x86-64 runtime under /usr/lib/mender-gateway',
      );
      // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format, not a template
      const depends = root.run(['dpkg-query', '-W', '-f=${Depends}', 'mender-gateway']).stdout;
      assert.doesNotMatch(depends, /\bnode/, `Depends: ${depends}`);
      assert.match(
        readFileSync(root.path('/var/lib/dpkg/info/mender-gateway.conffiles'), 'utf8'),
        /^\/etc\/mender\/mender-gateway\.conf$/m,
      );
      const user = root.run(['getent', 'passwd', 'mender-gateway']);
      assert.equal(user.status, 0, 'the service user exists');
      const uid = Number(user.stdout.split(':')[2]);
      assert.ok(uid > 0 && uid < 1000, `a system user (uid ${uid})`);
      assert.equal(statSync(root.path('/var/cache/mender-gateway')).uid, uid, "the cache directory is the user's");
      assert.equal(statSync(root.path(CONF)).mode & 0o777, 0o640);
      assert.match(
        readFileSync(root.path(UNIT), 'utf8'),
        /^ExecStart=\/usr\/bin\/mender-gateway --config \/etc\/mender\/mender-gateway\.conf$/m,
      );
      // systemd-analyze of this machine on the unit as installed in the root. A minbase root has
      // no systemd, so no sysinit.target; every command the unit runs must be there (ExecReload
      // uses the shell's kill: procps' /bin/kill is not in a minimal system).
      const verify = run('systemd-analyze', ['verify', `--root=${root.dir}`, UNIT]);
      if (!/ENOENT/.test(verify.stderr)) {
        const lines = (verify.stdout + verify.stderr).split('\n').filter((l) => l.trim() !== '');
        assert.deepEqual(
          lines.filter((l) => !/Unit sysinit\.target not found/.test(l)),
          [],
        );
      }
    });

    it('mender-gateway --version names the release', () => {
      const r = root.run([BIN, '--version']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^mender-gateway ${VERSION.replace(/\./g, '\\.')}\\n`));
    });

    it('check-config passes the shipped configuration (every key, with its default) edited to the emulator', async () => {
      const server = await menderServer();
      writeFileSync(root.path(CONF), editConfig(readFileSync(root.path(CONF), 'utf8'), server.url));
      const r = root.run([BIN, 'check-config', '--config', CONF]);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /configuration OK/);
    });

    it('reads a CRL (its parser libraries ship beside the bundle, loaded at the first CRL)', () => {
      const dir = root.path('/tmp/crl');
      mkdirSync(dir);
      const tls = makeTlsMaterial(dir);
      const der = makeCrl(dir, 'crl', tls.ca, { revoked: ['1A2B'], der: true });
      const inside = (p: string) => `/${relative(root.dir, p)}`;
      writeFileSync(
        join(dir, 'mtls.conf'),
        JSON.stringify({
          UpstreamServer: { URL: 'https://hosted.mender.io' },
          HTTP: { Enabled: false },
          HTTPS: { Enabled: true, Listen: '127.0.0.1:0', ServerCertificate: inside(tls.server.cert), ServerKey: inside(tls.server.key) },
          Features: {
            mTLS: {
              Enabled: true,
              CACertificate: inside(tls.ca.cert),
              CRLPath: inside(der),
              MenderUsername: 'gateway@example.com',
              MenderPassword: 'x',
            },
          },
        }),
      );
      const r = root.run([BIN, 'check-config', '--config', '/tmp/crl/mtls.conf']);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /CRL \(CRL 1 list\(s\), 1 revoked\)/);
    });

    it("started as the unit starts it (its user, environment and directories), serves a device's auth and next", async () => {
      const server = await menderServer();
      const unit = unitSettings(readFileSync(root.path(UNIT), 'utf8'));
      assert.equal(unit.user, 'mender-gateway');
      // systemd makes CacheDirectory= and StateDirectory= for the service; purge must remove them.
      for (const [d, mode] of unit.dirs)
        assert.equal(root.run(['install', '-d', '-o', unit.user, '-g', unit.user, '-m', mode, d]).status, 0);
      gateway = root.spawn(unit.exec, { user: unit.user, env: unit.env });
      const started = await listening(gateway, 30_000);
      const ps = readFileSync(`/proc/${gateway.pid}/status`, 'utf8');
      const uid = root.run(['id', '-u', unit.user]).stdout.trim();
      assert.match(ps, new RegExp(`^Uid:\\s+${uid}\\s+${uid}\\s`, 'm'), 'it runs as the service user');
      await deviceThrough(started.address, server, `02:00:00:26:00:0${SUITES.indexOf(suite)}`, started.output);
      assert.equal(await stop(gateway), 0, started.output());
      gateway = undefined;
    });

    it('dpkg --purge leaves the root as it was: no file, configuration, directory, user or group', () => {
      const r = root.run(['dpkg', '--purge', 'mender-gateway'], { timeoutMs: 120_000 });
      assert.equal(r.status, 0, r.stdout + r.stderr);
      // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format, not a template
      assert.doesNotMatch(root.run(['dpkg-query', '-W', '-f=${Status}', 'mender-gateway']).stdout, /ok installed/);
      const shared = new Set([
        '/etc',
        '/etc/default',
        '/lib',
        '/lib/systemd',
        '/lib/systemd/system',
        '/usr',
        '/usr/bin',
        '/usr/lib',
        '/usr/share',
        '/usr/share/doc',
      ]);
      assert.deepEqual(
        files.filter((f) => !shared.has(f) && (existsSync(root.path(f)) || isLink(root.path(f)))),
        [],
      );
      for (const gone of [CONF, '/etc/mender', '/var/lib/mender-gateway', '/var/cache/mender-gateway'])
        assert.ok(!existsSync(root.path(gone)), `${gone} is gone`);
      assert.notEqual(root.run(['getent', 'passwd', 'mender-gateway']).status, 0, 'the user is gone');
      assert.notEqual(root.run(['getent', 'group', 'mender-gateway']).status, 0, 'the group is gone');
      // Nothing anywhere else: the tree and the account files as before dpkg -i (shadow's
      // backups, /etc/passwd- and the like, keep the last state before userdel, as on any system).
      const now = snapshot(root.dir);
      assert.deepEqual(
        [...now].filter((p) => !pristine.has(p) && !/^etc\/(passwd|group|shadow|gshadow)-$/.test(p)),
        [],
        'paths added',
      );
      assert.deepEqual(
        [...pristine].filter((p) => !now.has(p)),
        [],
        'paths removed',
      );
      assert.deepEqual(
        ['passwd', 'group', 'shadow', 'gshadow'].map((f) => readFileSync(root.path(`/etc/${f}`), 'utf8')),
        passwd,
      );
    });
  });
}

describe('the arm64 package under qemu-user (Debian qemu-user-static, a Debian arm64 sysroot)', { timeout: 600_000 }, () => {
  let work: string;
  let sysroot: string;
  let argv: string[];
  let conf: string;
  let gateway: ChildProcess | undefined;

  before(() => {
    if (cannotQemu) assert.fail(`the arm64 package cannot be run here: ${cannotQemu}`);
    const t = Date.now();
    const cached = cachedRoot('bookworm', 'arm64', true);
    sysroot = cached.dir;
    console.log(
      `# release-package: arm64 sysroot ${cached.built ? `made by debootstrap --foreign in ${cached.stamp.seconds.toFixed(1)} s` : `cached ${cached.stamp.built}`} (${((Date.now() - t) / 1000).toFixed(1)} s)`,
    );
    work = mkdtempSync(join(tmpdir(), 'gw-arm64-'));
    const x = join(work, 'root');
    const r = run('dpkg-deb', ['-x', deb('arm64'), x], 120_000);
    assert.equal(r.status, 0, r.stderr);
    argv = launcher(x, BIN);
    conf = join(work, 'mender-gateway.conf');
  });

  after(async () => {
    if (gateway) await stop(gateway, 5_000);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('is an arm64 package whose runtime is an aarch64 ELF, with no dependency on nodejs', () => {
    const r = run('dpkg-deb', ['-f', deb('arm64'), 'Architecture', 'Depends']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^Architecture: arm64$/m);
    assert.doesNotMatch(r.stdout, /^Depends:.*\bnode/m);
    assert.ok(isElf(argv[0], 183), `${argv[0]} is an aarch64 ELF`);
  });

  it('mender-gateway --version names the release', () => {
    const r = qemu(['--version'], 120_000);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^mender-gateway ${VERSION.replace(/\./g, '\\.')}\\n`));
  });

  it('check-config passes the shipped configuration edited to the emulator', async () => {
    const server = await menderServer();
    const edited = JSON.parse(editConfig(readFileSync(join(work, 'root', CONF), 'utf8'), server.url));
    // Run on this machine as root: nothing of it may land in /var/lib.
    edited.Features.ReportJournal.Enabled = false;
    edited.Workers = 1;
    writeFileSync(conf, JSON.stringify(edited));
    const r = qemu(['check-config', '--config', conf], 120_000);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /configuration OK/);
  });

  it("serves a short while: listening, a device's auth and next answered, a clean stop", async () => {
    const server = await menderServer();
    gateway = spawn('qemu-aarch64-static', ['-L', sysroot, ...argv, '--config', conf], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: work,
      env: QEMU_ENV,
    });
    const started = await listening(gateway, 120_000);
    await deviceThrough(started.address, server, '02:00:00:26:00:64', started.output);
    assert.equal(await stop(gateway), 0, started.output());
    gateway = undefined;
  });

  function qemu(args: string[], timeoutMs: number) {
    return run('qemu-aarch64-static', ['-L', sysroot, ...argv, ...args], timeoutMs, undefined, QEMU_ENV);
  }
});

/**
 * The command behind the package's `bin`, as host paths under the extracted root x: an ELF is run
 * as it is; a shell wrapper's last `exec PROGRAM ARGS "$@"` line gives its program and arguments
 * (qemu-user runs one foreign program; without binfmt_misc the wrapper's exec could not).
 */
function launcher(x: string, bin: string): string[] {
  let path = join(x, bin);
  while (isLink(path)) {
    const target = readlinkSync(path);
    path = target.startsWith('/') ? join(x, target) : join(path, '..', target);
  }
  if (isElf(path)) return [path];
  const text = readFileSync(path, 'utf8');
  assert.match(text, /^#!\/bin\/sh\n/, `${bin}: an ELF or a /bin/sh wrapper`);
  const line = text.split('\n').find((l) => /^exec\s/.test(l));
  assert.ok(line, `${bin}: no exec line:\n${text}`);
  const words = line.split(/\s+/).slice(1);
  assert.equal(words.at(-1), '"$@"', `${bin}: ${line}`);
  return words.slice(0, -1).map((w) => {
    if (/^--[\w-]+=\w+$/.test(w)) return w; // a node flag, e.g. --max-semi-space-size=2
    assert.match(w, /^\/[\w./-]+$/, `${bin}: a plain absolute path: ${w}`);
    assert.ok(existsSync(join(x, w)), `${w} is in the package`);
    return join(x, w);
  });
}

/** An ELF file, of machine (62 x86-64, 183 aarch64) when given. */
function isElf(path: string, machine?: number): boolean {
  try {
    const head = Buffer.alloc(20);
    const fd = openSync(path, 'r');
    try {
      readSync(fd, head, 0, 20, 0);
    } finally {
      closeSync(fd);
    }
    return head.subarray(0, 4).equals(Buffer.from('\x7fELF', 'latin1')) && (machine === undefined || head.readUInt16LE(18) === machine);
  } catch {
    return false;
  }
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}
