import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, sign } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startMenderServer, type MenderServer } from '../../fixtures/mender-server';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import { buildNodejsStandIn, cannotInstall, dpkg, installedVersion, run, versionAtLeast } from '../support/dpkg';
import { REPO_ROOT } from '../support/gateway-process';
import { makeCrl } from '../support/device-certs';
import { makeTlsMaterial } from '../support/tls-material';

// The .deb `make release` builds, installed on this machine as on a box: the
// installed command, the shipped configuration, a device request through the installed gateway
// to the Mender server emulator, then `dpkg --purge` leaves none of its files and no user.
// In spec/e2e, which runs one file at a time: it changes the machine (a package, /etc/mender,
// a system user), and cli.test.ts relies on /etc/mender/mender-gateway.conf being absent.

const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const BIN = '/usr/bin/mender-gateway';
const CONF = '/etc/mender/mender-gateway.conf';
// Root and dpkg are prerequisites of `make test`'s end-to-end part (`.ci/run` runs as root on
// Debian): without them this test fails with the reason, it does not pass by skipping.
const cannot = cannotInstall();

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
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

/** The installed gateway as systemd would run it; resolves with its HTTP address once it listens. */
function startInstalled(config: string): Promise<{ child: ChildProcess; address: string; output: () => string }> {
  const child = spawn(BIN, ['--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening" within 10 s:\n${text}`)), 10_000);
    const onData = (chunk: string) => {
      text += chunk;
      const m = /msg="?listening"?.*\blistener=http\b.*\baddress=(\S+)/.exec(text);
      if (!m) return;
      clearTimeout(timer);
      resolve({ child, address: m[1].replace(/"/g, ''), output: () => text });
    };
    child.stderr!.setEncoding('utf8').on('data', onData);
    child.stdout!.setEncoding('utf8').on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited ${code} before listening:\n${text}`));
    });
  });
}

describe('release package (.deb) installed, used and purged', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-release-'));
  const deb = join(dir, `mender-gateway_${VERSION}_all.deb`);
  let standIn = false;
  let files: string[] = [];
  let gateway: ChildProcess | undefined;
  let server: MenderServer | undefined;
  let store: S3Store | undefined;

  before(() => {
    if (cannot) assert.fail(`the release package cannot be installed here: ${cannot}`);
    const built = run(process.execPath, [join(REPO_ROOT, 'support', 'release', 'build-release.js'), dir], 90_000);
    assert.equal(built.status, 0, built.stdout + built.stderr);
    // Depends: nodejs (>= 20). This machine's node may come from a package (NodeSource) or not.
    const node = installedVersion('nodejs');
    const extra: string[] = [];
    if (node === null) {
      const r = dpkg(['-i', buildNodejsStandIn(dir)]);
      assert.equal(r.status, 0, r.stderr);
      standIn = true;
      console.log(`# release-package: nodejs ${process.version} is not a dpkg package: installed an empty stand-in nodejs package for it`);
    } else if (!versionAtLeast(node, '20')) {
      extra.push('--ignore-depends=nodejs');
      console.log(
        `# release-package: the nodejs package is ${node} (< 20): installing with --ignore-depends=nodejs, running ${process.execPath}`,
      );
    }
    let r = dpkg([...extra, '-i', deb]);
    if (r.status !== 0) {
      console.log(`# release-package: dpkg -i failed, trying apt-get -f install:\n${r.stderr}`);
      r = run('apt-get', ['-f', 'install', '-y', '-q', '-o', 'DPkg::Lock::Timeout=60'], 120_000);
    }
    assert.equal(installedVersion('mender-gateway'), VERSION, r.stdout + r.stderr);
    files = dpkg(['-L', 'mender-gateway'])
      .stdout.split('\n')
      .filter((f) => f.startsWith('/') && f !== '/.');
  });

  after(async () => {
    gateway?.kill('SIGKILL');
    await server?.close();
    await store?.close();
    // Only the package this test installed: one that was there before it is never touched.
    if (!cannot && installedVersion('mender-gateway') !== null) dpkg(['--purge', 'mender-gateway']);
    if (standIn) dpkg(['--purge', 'nodejs']);
    rmSync(dir, { recursive: true, force: true });
  });

  it('installs the command, the bundle, the assets, the unit, and the configuration as a conffile readable by the service user', () => {
    for (const f of [
      BIN,
      '/usr/lib/mender-gateway/lib/mender-gateway.js',
      '/usr/lib/mender-gateway/lib/crl-libs.js',
      '/usr/lib/mender-gateway/lib/observe/status-page/assets/index.html',
      '/lib/systemd/system/mender-gateway.service',
      CONF,
    ]) {
      assert.ok(files.includes(f), `${f} in dpkg -L`);
    }
    assert.ok(!files.some((f) => f.includes('node_modules')), 'no node_modules');
    assert.equal(dpkg(['-s', 'mender-gateway']).stdout.match(/^Depends: (.*)$/m)?.[1], 'nodejs (>= 20), passwd');
    assert.match(readFileSync('/var/lib/dpkg/info/mender-gateway.conffiles', 'utf8'), /^\/etc\/mender\/mender-gateway\.conf$/m);
    const user = run('getent', ['passwd', 'mender-gateway']);
    assert.equal(user.status, 0, 'the service user exists');
    const uid = Number(user.stdout.split(':')[2]);
    assert.equal(statSync('/var/cache/mender-gateway').uid, uid, "the cache directory is the user's");
    assert.equal(statSync(CONF).mode & 0o777, 0o640);
    assert.match(
      readFileSync('/lib/systemd/system/mender-gateway.service', 'utf8'),
      /^ExecStart=\/usr\/bin\/mender-gateway --config \/etc\/mender\/mender-gateway\.conf$/m,
    );
    const verify = run('systemd-analyze', ['verify', '/lib/systemd/system/mender-gateway.service']);
    if (verify.status !== null && !/ENOENT/.test(verify.stderr)) assert.equal(verify.status, 0, verify.stderr);
  });

  it('mender-gateway --version names the release', () => {
    const r = run(BIN, ['--version']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^mender-gateway ${VERSION.replace(/\./g, '\\.')}\\n`));
  });

  it('check-config passes the shipped configuration (every key, with its default)', () => {
    const r = run(BIN, ['check-config', '--config', CONF]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /configuration OK/);
  });

  it('the installed gateway reads a CRL (its parser libraries ship beside the bundle, loaded at the first CRL)', () => {
    const tls = makeTlsMaterial(mkdtempSync(join(dir, 'tls-')));
    const der = makeCrl(dir, 'crl', tls.ca, { revoked: ['1A2B'], der: true });
    const conf = join(dir, 'mtls.conf');
    writeFileSync(
      conf,
      JSON.stringify({
        UpstreamServer: { URL: 'https://hosted.mender.io' },
        HTTP: { Enabled: false },
        HTTPS: { Enabled: true, Listen: '127.0.0.1:0', ServerCertificate: tls.server.cert, ServerKey: tls.server.key },
        Features: {
          mTLS: { Enabled: true, CACertificate: tls.ca.cert, CRLPath: der, MenderUsername: 'gateway@example.com', MenderPassword: 'x' },
        },
      }),
    );
    const r = run(BIN, ['check-config', '--config', conf]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /CRL \(CRL 1 list\(s\), 1 revoked\)/);
  });

  it("the installed gateway serves a device's authentication through to the Mender server", async () => {
    store = await startS3Store();
    server = await startMenderServer({ store, autoAccept: true });
    const conf = join(dir, 'gateway.conf');
    writeFileSync(
      conf,
      JSON.stringify({
        HTTP: { Enabled: true, Listen: '127.0.0.1:0' },
        UpstreamServer: { URL: server.url },
        Features: { ReportJournal: { Enabled: false } },
        Workers: 1,
      }),
    );
    const started = await startInstalled(conf);
    gateway = started.child;
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const body = Buffer.from(
      JSON.stringify({
        id_data: JSON.stringify({ mac: '02:00:00:00:18:03' }),
        pubkey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      }) + '\n',
    );
    const auth = await request(
      `http://${started.address}/api/devices/v1/authentication/auth_requests`,
      'POST',
      {
        'Content-Type': 'application/json',
        'X-MEN-Signature': sign(null, body, privateKey).toString('base64'),
      },
      body,
    );
    assert.equal(auth.status, 200, `${auth.text}\n${started.output()}`);
    assert.match(auth.text, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'a JWT');
    const next = await request(
      `http://${started.address}/api/devices/v1/deployments/device/deployments/next?artifact_name=a&device_type=t`,
      'GET',
      { Authorization: `Bearer ${auth.text}` },
    );
    assert.equal(next.status, 204, next.text);
    assert.ok(
      server.calls.some((c) => c.path === '/api/devices/v1/authentication/auth_requests' && c.status === 200),
      'the emulator answered it',
    );
    const exited = new Promise((r) => gateway!.once('exit', r));
    gateway.kill('SIGTERM');
    await exited;
    gateway = undefined;
  });

  it('dpkg --purge leaves none of its files, no configuration and no user', () => {
    const r = dpkg(['--purge', 'mender-gateway']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(installedVersion('mender-gateway'), null);
    // Directories such as /usr/bin are shared; the package's own ones go with their files.
    const shared = new Set([
      '/etc',
      '/etc/default',
      '/etc/mender',
      '/lib',
      '/lib/systemd',
      '/lib/systemd/system',
      '/usr',
      '/usr/bin',
      '/usr/lib',
      '/usr/share',
      '/usr/share/doc',
    ]);
    const left = files.filter((f) => !shared.has(f) && (existsSync(f) || isLink(f)));
    assert.deepEqual(left, []);
    assert.ok(!existsSync(CONF));
    assert.notEqual(run('getent', ['passwd', 'mender-gateway']).status, 0, 'the user is gone');
    assert.notEqual(run('getent', ['group', 'mender-gateway']).status, 0, 'the group is gone');
  });
});

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}
