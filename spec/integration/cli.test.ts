// The mender-gateway command as an operator runs it: `node bin/gateway.js` in a child process.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeServer, listenOnFreePort } from '../support/listen';
import { makeLeaf, makeTlsMaterial } from '../support/tls-material';

const ROOT = join(__dirname, '..', '..', '..');
const BIN = join(ROOT, 'bin', 'gateway.js');
const dir = mkdtempSync(join(tmpdir(), 'gw-cli-'));
const children = new Set<ChildProcess>();
after(() => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

// Only what the test sets: no HTTP(S)_PROXY or config variables leak in from the developer's shell.
const CLEAN_ENV = { PATH: process.env.PATH ?? '/usr/bin:/bin' };

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function start(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess & { out: { stdout: string; stderr: string } } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...CLEAN_ENV, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const out = { stdout: '', stderr: '' };
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out.stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out.stderr += d));
  return Object.assign(child, { out });
}

function finished(child: ReturnType<typeof start>, timeoutMs = 10_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`gateway did not exit within ${timeoutMs} ms; stderr: ${child.out.stderr}`));
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, ...child.out });
    });
  });
}

const run = (args: string[], env?: NodeJS.ProcessEnv) => finished(start(args, env));

let counter = 0;
function confFile(config: unknown): string {
  const path = join(dir, `gateway-${++counter}.conf`);
  writeFileSync(path, typeof config === 'string' ? config : JSON.stringify(config));
  return path;
}

const lines = (text: string) => text.split('\n').filter((l) => l !== '');

/** Resolves with the first match of `pattern` in the child's stderr. */
function logLine(child: ReturnType<typeof start>, pattern: RegExp, timeoutMs = 10_000): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no log line ${pattern}; stderr: ${child.out.stderr}`)), timeoutMs);
    const check = () => {
      const m = pattern.exec(child.out.stderr);
      if (m) {
        clearTimeout(timer);
        child.stderr!.off('data', check);
        resolve(m);
      }
    };
    child.stderr!.on('data', check);
    child.on('close', () => reject(new Error(`exited before logging ${pattern}; stderr: ${child.out.stderr}`)));
    check();
  });
}

/** The address of the `msg="listening"` line of the given listener. */
async function listeningAddress(child: ReturnType<typeof start>, listener: string): Promise<string> {
  return (await logLine(child, new RegExp(`msg="listening" listener=${listener} address=(\\S+)`)))[1];
}

function get(address: string, path: string): Promise<{ status: number; body: string }> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, method: 'GET', timeout: 5000 }, (res: IncomingMessage) => {
      let body = '';
      res
        .setEncoding('utf8')
        .on('data', (d: string) => (body += d))
        .on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject).end();
  });
}

test('--version prints the product-style version line, then node', async () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const r = await run(['--version']);
  assert.equal(r.code, 0);
  assert.deepEqual(lines(r.stdout), [`mender-gateway ${pkg.version}`, `node ${process.version}`]);
  assert.match(lines(r.stdout)[0], /^mender-gateway [0-9]+\.[0-9]+\.[0-9b]+/); // what Mender's build scripts extract
  assert.equal(r.stderr, '');
});

test('-h and --help print the usage of the product', async () => {
  for (const flag of ['-h', '--help']) {
    const r = await run([flag]);
    assert.equal(r.code, 0);
    const out = lines(r.stdout);
    assert.equal(out[1], 'Usage: mender-gateway [flags]');
    assert.ok(out.includes('      --config FILE       Configuration JSON FILE (default "/etc/mender/mender-gateway.conf")'));
    assert.ok(out.includes('      --log-level LEVEL   Log LEVEL, <debug|info|warn|error|fatal> (default "info")'));
    assert.ok(out.includes('  -h, --help              Show this help text.'));
    assert.ok(out.includes('      --version           Print version and exit.'));
  }
});

test('a bad --log-level is one line and exit 2, before any config is read', async () => {
  const r = await run(['--log-level', 'verbose', '--config', join(dir, 'never-read.conf')]);
  assert.equal(r.code, 2);
  assert.deepEqual(lines(r.stderr), ['mender-gateway: invalid --log-level "verbose": must be one of debug, info, warn, error, fatal']);
});

test('an unknown flag is one line and exit 2', async () => {
  const r = await run(['--listen', ':80']);
  assert.equal(r.code, 2);
  assert.equal(lines(r.stderr).length, 1);
  assert.match(r.stderr, /^mender-gateway: Unknown option '--listen'.*\(see --help\)\n$/);
});

test('a missing --config file is one line and exit 2', async () => {
  const missing = join(dir, 'missing.conf');
  const r = await run(['--config', missing]);
  assert.equal(r.code, 2);
  assert.deepEqual(lines(r.stderr), [`mender-gateway: ${missing}: cannot read configuration file: no such file`]);
});

test('malformed JSON is one line with its position and exit 2', async () => {
  const file = confFile('{\n  "HTTP": {"Enabled": true,,}\n}');
  const r = await run(['--config', file]);
  assert.equal(r.code, 2);
  assert.equal(lines(r.stderr).length, 1);
  assert.match(r.stderr, new RegExp(`^mender-gateway: ${file}: invalid JSON at line 2 column 28: `));
});

test('schema errors: every one on its own line, exit 2', async () => {
  const file = confFile({
    HTTP: { Enabled: true, Listen: '8080' },
    HTTPS: { Listen: '443x' },
    UpstreamServer: { URL: 'https://hosted.mender.io', Timeout: '60' },
  });
  const r = await run(['--config', file], { HTTP_ENABLED: 'maybe' });
  assert.equal(r.code, 2);
  assert.deepEqual(lines(r.stderr), [
    'mender-gateway: HTTP_ENABLED: must be a boolean (1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False), got "maybe"',
    'mender-gateway: HTTP.Listen: must be host:port (":443", "127.0.0.1:8080", "[::1]:8443"), got "8080"',
    'mender-gateway: HTTPS.Listen: must be host:port (":443", "127.0.0.1:8080", "[::1]:8443"), got "443x"',
    'mender-gateway: UpstreamServer.Timeout: must be a positive Go duration such as "90s", "30m" or "1h30m", got "60"',
  ]);
});

test('a key that does not match the certificate: one line, exit 2, nothing listens', async () => {
  const tls = makeTlsMaterial(mkdtempSync(join(dir, 'tls-')));
  const other = makeLeaf(tls.dir, 'other', tls.ca);
  const file = confFile({
    HTTPS: { Enabled: true, Listen: '127.0.0.1:0', ServerCertificate: tls.server.cert, ServerKey: other.key },
    UpstreamServer: { URL: 'http://127.0.0.1:9' },
  });
  const r = await run(['--config', file, '--log-level', 'error']);
  assert.equal(r.code, 2);
  assert.deepEqual(lines(r.stderr), [
    `mender-gateway: HTTPS.ServerKey: ${other.key} does not match the certificate in HTTPS.ServerCertificate ${tls.server.cert}`,
  ]);
});

test('a port in use: one line, exit 1', async () => {
  const occupier = createNetServer();
  const port = await listenOnFreePort(occupier);
  try {
    const file = confFile({ HTTP: { Enabled: true, Listen: `127.0.0.1:${port}` }, UpstreamServer: { URL: 'http://127.0.0.1:9' } });
    const r = await run(['--config', file, '--log-level', 'fatal']);
    assert.equal(r.code, 1);
    const out = lines(r.stderr);
    assert.equal(out.length, 1, r.stderr);
    assert.match(out[0], new RegExp(`^mender-gateway: .*127\\.0\\.0\\.1:${port}.*in use`));
  } finally {
    await closeServer(occupier);
  }
});

test('starts, answers the health check, logs the file and the warnings, exits 0 on SIGTERM', async () => {
  const file = confFile({
    HTTP: { Enabled: true, Listen: '127.0.0.1:0' },
    UpstreamServer: { URL: 'http://127.0.0.1:9' },
    NewerProductKey: 1,
  });
  const child = start(['--config', file]);
  const address = await listeningAddress(child, 'http');
  const alive = await get(address, '/api/internal/v1/gateway/alive');
  assert.equal(alive.status, 204);
  assert.match(child.out.stderr, new RegExp(`level=info msg="loaded configuration file: ${file}"`));
  assert.match(child.out.stderr, /level=warning msg="NewerProductKey: unknown key, ignored"/);
  child.kill('SIGTERM');
  const r = await finished(child);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.signal, null);
});

test('SIGINT lets a request in flight finish, then exits 0', async () => {
  let release: () => void = () => {};
  let arrived: () => void = () => {};
  const reachedUpstream = new Promise<void>((resolve) => (arrived = resolve));
  const upstream = createServer((_req, res) => {
    release = () => res.end('late but whole');
    arrived();
  });
  const upstreamPort = await listenOnFreePort(upstream);
  try {
    const file = confFile({
      HTTP: { Enabled: true, Listen: '127.0.0.1:0' },
      UpstreamServer: { URL: `http://127.0.0.1:${upstreamPort}` },
      ShutdownTimeout: '10s',
    });
    const child = start(['--config', file]);
    const address = await listeningAddress(child, 'http');
    const inFlight = get(address, '/api/devices/v1/deployments/device/deployments/next');
    await reachedUpstream;
    child.kill('SIGINT');
    await logLine(child, /msg="shutting down"/);
    release();
    const response = await inFlight;
    assert.deepEqual(response, { status: 200, body: 'late but whole' });
    const r = await finished(child);
    assert.equal(r.code, 0, r.stderr);
  } finally {
    await closeServer(upstream);
  }
});

test('DebugLog: true means debug level, secrets redacted; --log-level wins over it', async () => {
  const config = {
    HTTP: { Enabled: true, Listen: '127.0.0.1:0' },
    UpstreamServer: { URL: 'http://127.0.0.1:9' },
    Features: {
      mTLS: { MenderPassword: 'correcthorsebatterystaple' },
      ArtifactsProxy: { ArtifactsCache: { SignatureSecret: 'S0VZS0VZS0VZ' } },
    },
    DebugLog: true,
  };
  const file = confFile(config);
  const debug = start(['--config', file]);
  await listeningAddress(debug, 'http');
  debug.kill('SIGTERM');
  const r1 = await finished(debug);
  assert.equal(r1.code, 0);
  assert.match(r1.stderr, /level=debug msg="effective configuration: /);
  assert.doesNotMatch(r1.stderr, /correcthorsebatterystaple|S0VZS0VZS0VZ/);

  const quiet = start(['--config', file, '--log-level', 'info']);
  await listeningAddress(quiet, 'http');
  quiet.kill('SIGTERM');
  const r2 = await finished(quiet);
  assert.equal(r2.code, 0);
  assert.doesNotMatch(r2.stderr, /level=debug/);
});

test('environment only, as in the product container (the default config file is absent here)', async () => {
  const child = start([], { HTTP_ENABLED: 'true', HTTP_LISTEN: '127.0.0.1:0', UPSTREAM_SERVER: 'http://127.0.0.1:9' });
  const address = await listeningAddress(child, 'http');
  assert.equal((await get(address, '/api/internal/v1/gateway/alive')).status, 204);
  assert.match(child.out.stderr, /no configuration file at \/etc\/mender\/mender-gateway.conf: using the environment and defaults/);
  child.kill('SIGTERM');
  assert.equal((await finished(child)).code, 0);
});
