// mender-gateway check-config as an operator runs it: `node bin/gateway.js` in a
// child process, on real files, real ports and the Mender server emulator.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMenderServer, type MenderServer } from '../../fixtures/mender-server';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import { CHECK_CONFIG_USAGE } from '../../lib/commands/check-config';
import { closeServer, freePort, listenOnFreePort } from '../support/listen';
import { makeCrl, makeIntermediate } from '../support/device-certs';
import { makeLeaf, makeTlsMaterial, type TlsMaterial } from '../support/tls-material';

const ROOT = join(__dirname, '..', '..', '..');
const BIN = join(ROOT, 'bin', 'gateway.js');
const dir = mkdtempSync(join(tmpdir(), 'gw-check-'));
// Only what the test sets: no proxy or config variables leak in from the developer's shell.
const CLEAN_ENV = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
const PASSWORD = 'S3cret-Horse-Battery-9';
const USER = { email: 'gateway@example.com', password: PASSWORD };

let tls: TlsMaterial;
let store: S3Store;
let menderServer: MenderServer;
const held: Server[] = [];

before(async () => {
  mkdirSync(join(dir, 'tls'));
  tls = makeTlsMaterial(join(dir, 'tls'));
  store = await startS3Store();
  menderServer = await startMenderServer({ store, users: [USER], tls: tls.server });
});
after(async () => {
  for (const s of held) await closeServer(s);
  await menderServer?.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: NodeJS.ProcessEnv = {}, as: { uid?: number; gid?: number } = {}, timeoutMs = 20_000): Promise<Run> {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    env: { ...CLEAN_ENV, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...as,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`check-config did not exit within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A port held by another listener for the rest of the file. */
async function busyPort(): Promise<number> {
  const s = createServer();
  held.push(s);
  return listenOnFreePort(s);
}

let counter = 0;
function confFile(config: unknown): string {
  const path = join(dir, `gateway-${++counter}.conf`);
  writeFileSync(path, JSON.stringify(config, null, 2));
  return path;
}

async function goodConfig(cachePath: string) {
  return {
    HTTP: { Enabled: true, Listen: `127.0.0.1:${await freePort()}` },
    HTTPS: { Enabled: true, Listen: `127.0.0.1:${await freePort()}`, ServerCertificate: tls.server.cert, ServerKey: tls.server.key },
    UpstreamServer: { URL: menderServer.url, CACertificate: tls.ca.cert },
    Features: {
      ArtifactsProxy: {
        Enabled: true,
        GatewayURL: 'https://gateway.example.com',
        DomainWhitelist: ['s3.amazonaws.com', '*.example.net'],
        ArtifactsCache: { Enabled: true, Path: cachePath },
      },
      mTLS: { Enabled: true, CACertificate: tls.ca.cert, MenderUsername: USER.email, MenderPassword: PASSWORD },
    },
  };
}

const noFreeSpace = (text: string) => text.replace(/[0-9.]+ GiB free/g, 'N GiB free');

test('a good configuration: exit 0, "configuration OK" and a summary; the cache probe leaves nothing behind', async () => {
  const cache = join(dir, 'cache-good');
  mkdirSync(cache);
  const file = confFile(await goodConfig(cache));
  const r = await run(['check-config', '--config', file]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.equal(lines[0], 'configuration OK');
  assert.match(r.stdout, new RegExp(`file +${file.replace(/[.]/g, '\\.')}\n`));
  assert.match(r.stdout, /environment +\(no variables set\)/);
  assert.match(r.stdout, /listener +HTTP\.Listen 127\.0\.0\.1:[0-9]+: free/);
  assert.match(r.stdout, /listener +HTTPS\.Listen 127\.0\.0\.1:[0-9]+ \(TLS 1\.2\+\): free/);
  assert.match(r.stdout, new RegExp(`upstream +${menderServer.url.replace(/[.]/g, '\\.')} \\(CA `));
  assert.match(r.stdout, /cache +.*cache-good: writable \([0-9.]+ GiB free\)/);
  assert.match(r.stdout, /mTLS +CA .*, user gateway@example\.com/);
  assert.deepEqual(readdirSync(cache), [], 'the probe file is removed');
  assert.ok(!r.stdout.includes(PASSWORD) && !r.stderr.includes(PASSWORD));
  assert.ok(!r.stdout.includes('online'), 'no network check without --online');
  assert.equal(menderServer.logins.length, 0, 'offline check never logs in');

  // nginx -t: the flag form gives the same result.
  for (const flag of ['-t', '--check-config']) {
    const t = await run([flag, '--config', file]);
    assert.equal(t.code, 0, t.stderr);
    assert.equal(noFreeSpace(t.stdout), noFreeSpace(r.stdout));
  }
});

test('mTLS without IdentityAttribute: OK, with one warning that names the risk and the key; none once it is set', async () => {
  const config = await goodConfig(join(dir, 'not-yet-identity', 'cache'));
  const open = await run(['check-config', '--config', confFile(config)]);
  assert.equal(open.code, 0, open.stderr);
  const warnings = open.stderr.split('\n').filter((l) => l.startsWith('warning: '));
  assert.deepEqual(
    warnings.filter((l) => /IdentityAttribute/.test(l)),
    [
      "warning: Features.mTLS.IdentityAttribute: empty, so a device with any valid certificate may claim another device's id_data; name the id_data attribute its certificate holds (docs/mtls.md)",
    ],
  );
  const bound = { ...config, Features: { ...config.Features, mTLS: { ...config.Features.mTLS, IdentityAttribute: 'mac' } } };
  const closed = await run(['check-config', '--config', confFile(bound)]);
  assert.equal(closed.code, 0, closed.stderr);
  assert.doesNotMatch(closed.stderr, /IdentityAttribute/);
});

test('a cache directory that does not exist yet: OK when its parent lets it be created', async () => {
  const file = confFile(await goodConfig(join(dir, 'not-yet', 'cache')));
  const r = await run(['check-config', '--config', file]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /not-yet\/cache: does not exist yet; .* lets the gateway create it/);
});

test('warns, as a start would, when something private is open to the LAN: the status page, plain HTTP beside mTLS', async () => {
  const quiet = await goodConfig(join(dir, 'cache-quiet'));
  const ok = await run(['check-config', '--config', confFile(quiet)]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.doesNotMatch(
    ok.stderr.replace(/^warning: Features\.mTLS\.IdentityAttribute: .*$/m, ''),
    /warning:/,
    'HTTP beside mTLS serves only the health probe: nothing to warn about',
  );

  const open = {
    ...quiet,
    Metrics: { Enabled: true, Listen: `:${await freePort()}`, StatusPageAllowRemote: true },
    Features: { ...quiet.Features, mTLS: { ...quiet.Features.mTLS, AllowPlainHTTP: true } },
  };
  const r = await run(['check-config', '--config', confFile(open)]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stderr,
    /^warning: Metrics\.StatusPageAllowRemote: the status page and \/api\/status \(device ids, addresses, deployments\) are served to every peer/m,
  );
  assert.match(r.stderr, /^warning: Features\.mTLS\.AllowPlainHTTP: devices may use the device API over plain HTTP/m);
  const json = JSON.parse((await run(['check-config', '--json', '--config', confFile(open)])).stdout) as { warnings: string[] };
  assert.equal(json.warnings.filter((w) => /^(Metrics\.StatusPageAllowRemote|Features\.mTLS\.AllowPlainHTTP): /.test(w)).length, 2);
});

test('warns, as a start would, about dates: a certificate ending within 30 days, an expired CA in a bundle, a CRL past its nextUpdate', async () => {
  const certs = join(dir, 'tls');
  const soon = makeLeaf(certs, 'server-soon', tls.ca, { subject: '/CN=localhost', days: 10 });
  const retired = makeIntermediate(certs, 'retired-ca', tls.ca, { fromDays: -400, toDays: -2 });
  const ending = makeIntermediate(certs, 'ending-ca', tls.ca, { toDays: 20 });
  const clientCas = join(certs, 'client-cas.crt');
  writeFileSync(clientCas, readFileSync(tls.ca.cert, 'utf8') + readFileSync(retired.cert, 'utf8'));
  const upstreamCas = join(certs, 'upstream-cas.crt');
  writeFileSync(upstreamCas, readFileSync(ending.cert, 'utf8') + readFileSync(tls.ca.cert, 'utf8'));
  const crl = makeCrl(certs, 'stale-crl', tls.ca, { revoked: ['0A1B'], lastUpdateDays: -10, nextUpdateDays: -3 });
  const config = await goodConfig(join(dir, 'cache-dates'));
  config.HTTPS.ServerCertificate = soon.cert;
  config.HTTPS.ServerKey = soon.key;
  config.UpstreamServer.CACertificate = upstreamCas;
  Object.assign(config.Features.mTLS, { CACertificate: clientCas, CRLPath: crl, IdentityAttribute: 'mac' });
  const r = await run(['check-config', '--config', confFile(config)]);
  assert.equal(r.code, 0, r.stderr);
  const notAfter = (path: string) => new X509Certificate(readFileSync(path)).validToDate.toISOString();
  const nextUpdate = new Date(
    execFileSync('openssl', ['crl', '-in', crl, '-noout', '-nextupdate'], { encoding: 'utf8' }).replace(/^nextUpdate=/, ''),
  ).toISOString();
  assert.deepEqual(
    r.stderr.split('\n').filter((l) => l.startsWith('warning: ')),
    [
      `warning: HTTPS.ServerCertificate: certificate expires soon: ${soon.cert} notAfter ${notAfter(soon.cert)} (9 days left)`,
      `warning: Features.mTLS.CACertificate: certificate expired: ${clientCas} notAfter ${notAfter(retired.cert)} (2 days ago)`,
      `warning: UpstreamServer.CACertificate: certificate expires soon: ${upstreamCas} notAfter ${notAfter(ending.cert)} (19 days left)`,
      `warning: Features.mTLS.CRLPath: CRL is past its nextUpdate: still enforced: ${crl} nextUpdate ${nextUpdate}; install a fresh CRL (or blocklist serials meanwhile)`,
    ],
  );
  assert.match(r.stdout, /mTLS +CA .*CRL 1 list\(s\), 1 revoked, PAST its next update/);
});

test('one file with several mistakes: exit 2 and every error at once, each naming its key and the file', async () => {
  const other = makeLeaf(join(dir, 'tls'), 'other', tls.ca, { subject: '/CN=other' });
  const port = await busyPort();
  const config = await goodConfig(join(dir, 'cache-bad'));
  config.HTTP.Listen = `127.0.0.1:${port}`; // in use
  config.HTTPS.ServerKey = other.key; // does not match the certificate
  config.UpstreamServer.CACertificate = join(dir, 'missing-ca.pem'); // no such file
  config.Features.ArtifactsProxy.DomainWhitelist = ['s3.amazonaws.com', 'https://bad host/'];
  const file = confFile(config);
  const r = await run(['check-config', '--config', file]);
  assert.equal(r.code, 2, r.stdout);
  assert.doesNotMatch(r.stdout, /configuration OK/);
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('error: '));
  const from = `(from file ${file})`;
  const expected = [
    `error: HTTPS.ServerKey: ${other.key} does not match the certificate in HTTPS.ServerCertificate ${tls.server.cert} ${from}`,
    `error: UpstreamServer.CACertificate: cannot read ${join(dir, 'missing-ca.pem')}: no such file ${from}`,
    `error: Features.ArtifactsProxy.DomainWhitelist[1]: "https://bad host/" is not a host name ${from}`,
    `error: HTTP.Listen: 127.0.0.1:${port}: in use (by a running gateway?) ${from}`,
  ];
  assert.deepEqual(errors, expected);
  assert.match(r.stderr, /configuration has 4 errors\n$/);
});

test('mistakes the schema finds and mistakes only the deeper checks find are reported together', async () => {
  const other = makeLeaf(join(dir, 'tls'), 'other-2', tls.ca, { subject: '/CN=other-2' });
  const port = await busyPort();
  const config = await goodConfig(join(dir, 'cache-mixed'));
  (config.UpstreamServer as Record<string, unknown>).Timeout = '30 parsecs'; // the schema refuses it
  config.HTTPS.ServerKey = other.key; // only the file check sees it
  config.HTTP.Listen = `127.0.0.1:${port}`; // only the port check sees it
  const file = confFile(config);
  const r = await run(['check-config', '--config', file]);
  assert.equal(r.code, 2, r.stdout);
  const from = `(from file ${file})`;
  assert.deepEqual(
    r.stderr.split('\n').filter((l) => l.startsWith('error: ')),
    [
      `error: UpstreamServer.Timeout: must be a positive Go duration such as "90s", "30m" or "1h30m", got "30 parsecs" ${from}`,
      `error: HTTPS.ServerKey: ${other.key} does not match the certificate in HTTPS.ServerCertificate ${tls.server.cert} ${from}`,
      `error: HTTP.Listen: 127.0.0.1:${port}: in use (by a running gateway?) ${from}`,
    ],
  );
  assert.match(r.stderr, /configuration has 3 errors\n$/);
});

test('schema mistakes (a malformed URL and duration) are reported together, with their source', async () => {
  const config = await goodConfig(join(dir, 'cache-schema'));
  (config.UpstreamServer as Record<string, unknown>).URL = 'hosted.mender.io';
  (config.UpstreamServer as Record<string, unknown>).Timeout = '30 parsecs';
  const file = confFile(config);
  const r = await run(['check-config', '--config', file], { SHUTDOWN_TIMEOUT: 'soon' });
  assert.equal(r.code, 2);
  assert.match(
    r.stderr,
    new RegExp(
      `^error: UpstreamServer\\.URL: must be an http:// or https:// URL with a host, got "hosted\\.mender\\.io" \\(from file ${file.replace(/[.]/g, '\\.')}\\)$`,
      'm',
    ),
  );
  assert.match(r.stderr, /^error: UpstreamServer\.Timeout: must be a positive Go duration .*, got "30 parsecs" \(from file /m);
  assert.match(r.stderr, /^error: ShutdownTimeout: must be a positive Go duration .*, got "soon" \(from environment SHUTDOWN_TIMEOUT\)$/m);
  assert.match(r.stderr, /configuration has 3 errors/);
});

test('a variable overriding a key is named as the source of its error, and listed in the summary', async () => {
  const other = makeLeaf(join(dir, 'tls'), 'other-env', tls.ca, { subject: '/CN=other' });
  const file = confFile(await goodConfig(join(dir, 'cache-env')));
  const r = await run(['check-config', '--config', file], { HTTPS_SERVER_KEY: other.key });
  assert.equal(r.code, 2);
  assert.match(
    r.stderr,
    /^error: HTTPS\.ServerKey: .*other-env\.key does not match the certificate .* \(from environment HTTPS_SERVER_KEY\)$/m,
  );

  const port = await freePort();
  const ok = await run(['check-config', '--config', file], {
    HTTP_LISTEN: `127.0.0.1:${port}`,
    ARTIFACTS_PROXY_CACHE_FILL_RATE_LIMIT: '1048576',
    ARTIFACTS_PROXY_CACHE_PREWARM_WINDOW: '01:00-05:00',
  });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /environment +ARTIFACTS_PROXY_CACHE_PREWARM_WINDOW, ARTIFACTS_PROXY_CACHE_FILL_RATE_LIMIT, HTTP_LISTEN\n/);
  assert.match(
    ok.stdout,
    /cache +.*cache-env: does not exist yet; .* \([0-9.]+ GiB free\), fills capped at 1048576 bytes\/s, prewarm 01:00-05:00 only\n/,
  );
  assert.match(ok.stdout, new RegExp(`listener +HTTP\\.Listen 127\\.0\\.0\\.1:${port}: free`));
});

test('a cache path that cannot be written is an error naming the key', async () => {
  const notADir = join(dir, 'plain-file');
  writeFileSync(notADir, 'x');
  const file = confFile(await goodConfig(join(notADir, 'cache')));
  const r = await run(['check-config', '--config', file]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^error: Features\.ArtifactsProxy\.ArtifactsCache\.Path: .*plain-file\/cache: .*not a directory \(from file /m);

  const existing = confFile(await goodConfig(notADir));
  const r2 = await run(['check-config', '--config', existing]);
  assert.equal(r2.code, 2);
  assert.match(r2.stderr, /ArtifactsCache\.Path: .*plain-file: is not a directory/);
});

test('as an unprivileged user: a read-only cache directory, one that cannot be created, and a port below 1024', async () => {
  // root writes through mode bits and binds any port: run the check as nobody then.
  const as = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
  const open = mkdtempSync(join(tmpdir(), 'gw-check-user-'));
  chmodSync(open, 0o755);
  const locked = join(open, 'locked');
  mkdirSync(locked, { mode: 0o555 });
  const unprivilegedFrom = Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8'));
  const write = (name: string, cache: string) => {
    const path = join(open, name);
    const config = {
      HTTP: { Enabled: true, Listen: '127.0.0.1:1' },
      UpstreamServer: { URL: 'http://127.0.0.1:9' },
      Features: { ArtifactsProxy: { Enabled: true, GatewayURL: 'http://gw.example', ArtifactsCache: { Enabled: true, Path: cache } } },
    };
    writeFileSync(path, JSON.stringify(config), { mode: 0o644 });
    return path;
  };
  try {
    const r = await run(['check-config', '--config', write('a.conf', locked)], {}, as);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /^error: Features\.ArtifactsProxy\.ArtifactsCache\.Path: .*locked: not writable: permission denied \(from file /m,
    );
    if (unprivilegedFrom > 1)
      assert.match(r.stderr, /^error: HTTP\.Listen: 127\.0\.0\.1:1: port 1 needs root or CAP_NET_BIND_SERVICE \(from file /m);
    const r2 = await run(['check-config', '--config', write('b.conf', join(locked, 'sub', 'cache'))], {}, as);
    assert.equal(r2.code, 2);
    assert.match(
      r2.stderr,
      /ArtifactsCache\.Path: .*locked\/sub\/cache: does not exist and cannot be created in .*locked: permission denied/,
    );
  } finally {
    rmSync(open, { recursive: true, force: true });
  }
});

test('--online against the emulator: upstream reachable over TLS, login OK; the password is never printed', async () => {
  const file = confFile(await goodConfig(join(dir, 'cache-online')));
  const before = menderServer.logins.length;
  const r = await run(['check-config', '--online', '--config', file]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /online +upstream https:\/\/127\.0\.0\.1:[0-9]+: reachable \(HTTP [0-9]{3}\)/);
  assert.match(r.stdout, /online +management login as gateway@example\.com: login OK/);
  assert.deepEqual(menderServer.logins.slice(before), [{ email: USER.email, ok: true }]);
  assert.ok(!`${r.stdout}${r.stderr}`.includes(PASSWORD));
  assert.doesNotMatch(`${r.stdout}${r.stderr}`, /eyJ/, 'no JWT in the output');
});

test('--online with a wrong password: exit 2, the status, and neither password printed', async () => {
  const wrong = 'Wrong-Password-42';
  const file = confFile(await goodConfig(join(dir, 'cache-wrong')));
  const r = await run(['check-config', '--online', '--config', file], { MTLS_MENDER_PASSWORD: wrong });
  assert.equal(r.code, 2);
  assert.match(
    r.stderr,
    /^error: Features\.mTLS\.MenderUsername: management login as gateway@example\.com: login failed: status 401: check Features\.mTLS\.MenderUsername and MenderPassword/m,
  );
  for (const secret of [wrong, PASSWORD]) assert.ok(!`${r.stdout}${r.stderr}`.includes(secret), `${secret} printed`);
  assert.equal(menderServer.logins.at(-1)?.ok, false);
});

test('--online without the upstream CA: a TLS error, named as such', async () => {
  const config = await goodConfig(join(dir, 'cache-noca'));
  config.UpstreamServer.CACertificate = '';
  const r = await run(['check-config', '--online', '--config', confFile(config)]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^error: UpstreamServer\.URL: upstream https:\/\/127\.0\.0\.1:[0-9]+: TLS error: /m);
});

test('--online with the S3 shared cache: the bucket is checked, a wrong bucket is an error', async () => {
  const config = await goodConfig(join(dir, 'cache-s3'));
  const s3 = {
    Enabled: true,
    Endpoint: store.endpoint,
    Bucket: store.bucket,
    Region: store.region,
    AccessKeyID: store.accessKey,
    SecretAccessKey: store.secretKey,
  };
  Object.assign(config.Features.ArtifactsProxy.ArtifactsCache, { S3: s3 });
  const r = await run(['check-config', '--online', '--config', confFile(config)]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /online +S3 bucket .*: reachable, bucket exists, credentials accepted/);
  assert.ok(!r.stdout.includes(store.secretKey));

  Object.assign(config.Features.ArtifactsProxy.ArtifactsCache, { S3: { ...s3, Bucket: 'no-such-bucket' } });
  const bad = await run(['check-config', '--online', '--config', confFile(config)]);
  assert.equal(bad.code, 2);
  assert.match(
    bad.stderr,
    /^error: Features\.ArtifactsProxy\.ArtifactsCache\.S3\.Bucket: S3 bucket .*no-such-bucket: answered 404 NoSuchBucket/m,
  );
});

test('--json: one object with the errors, each with key and source', async () => {
  const port = await busyPort();
  const config = await goodConfig(join(dir, 'cache-json'));
  config.HTTP.Listen = `127.0.0.1:${port}`;
  const file = confFile(config);
  // -t takes the check's own flags too (the start's parser does not know --json).
  const r = await run(['-t', '--json', '--config', file]);
  assert.equal(r.code, 2);
  const body = JSON.parse(r.stdout) as { ok: boolean; errors: { key: string; source: string; message: string }[] };
  assert.equal(body.ok, false);
  assert.deepEqual(body.errors, [
    { key: 'HTTP.Listen', source: `file ${file}`, message: `127.0.0.1:${port}: in use (by a running gateway?)` },
  ]);
});

test('--help prints the usage; an unknown flag is a usage error', async () => {
  const r = await run(['check-config', '--help']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, CHECK_CONFIG_USAGE);
  assert.match(r.stdout, /--online/);
  const h = await run(['-t', '-h']);
  assert.equal(h.code, 0);
  assert.equal(h.stdout, CHECK_CONFIG_USAGE, "-h beside -t is the check's help");
  const bad = await run(['check-config', '--bogus']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /check-config: Unknown option '--bogus' \(see --help\)/);
});
