// `mender-gateway cache list|evict|verify|prewarm` as an operator runs them: child processes on
// a real cache path, artifacts in the real S3 store behind presigned links from the Mender
// server emulator, and a running gateway beside them for the single-flight case.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import { startMenderServer, type MenderServer } from '../../fixtures/mender-server';
import { REPO_ROOT, startGateway, writeGatewayConfig, type GatewayProcess } from '../support/gateway-process';
import { createLinkSigner } from '../../lib/artifacts/signed-link';
import { cacheLayout, objectPath } from '../../lib/cache/store/cache-layout';
import { cacheKey, entryId } from '../../lib/cache/store/cache-key';

const BIN = join(REPO_ROOT, 'bin', 'gateway.js');
const MiB = 1024 * 1024;
const CLEAN_ENV = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

const children = new Set<ChildProcess>();

function start(args: string[]): ChildProcess & { out: { stdout: string; stderr: string }; done: Promise<Run> } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, env: CLEAN_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const out = { stdout: '', stderr: '' };
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out.stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out.stderr += d));
  const done = new Promise<Run>((resolve) =>
    child.on('close', (code) => {
      children.delete(child);
      resolve({ code, ...out });
    }),
  );
  return Object.assign(child, { out, done });
}

async function run(args: string[], timeoutMs = 60_000): Promise<Run> {
  const child = start(args);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const r = await child.done;
  clearTimeout(timer);
  return r;
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('mender-gateway cache', () => {
  let dir: string;
  let store: S3Store;
  let server: MenderServer;
  let configFile: string;
  let cacheDir: string;
  const secret = randomBytes(32).toString('base64');
  const artifacts: Record<string, { id: string; bytes: Buffer }> = {};

  const listJson = async () => {
    const r = await run(['cache', 'list', '--json', '--config', configFile]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as { artifact: string; state: string; size: number; bytes: number; hits: number; id: string }[];
  };
  const originOf = async (name: string) => new URL(await store.presignGet(artifacts[name]!.id, 900));
  const cachedBytes = async (name: string) => fsp.readFile(objectPath(cacheLayout(cacheDir), entryId(cacheKey(await originOf(name)))));

  before(async () => {
    dir = await fsp.mkdtemp(join(tmpdir(), 'cache-command-'));
    cacheDir = join(dir, 'cache');
    store = await startS3Store();
    server = await startMenderServer({ store, linkExpirySeconds: 900 });
    for (const [name, size] of [
      ['small', 1 * MiB],
      ['big', 4 * MiB],
      ['other', 2 * MiB],
      ['tty', 3 * MiB],
      ['follow', 4 * MiB],
    ] as const) {
      const bytes = randomBytes(size);
      const file = join(dir, `${name}.mender`);
      await fsp.writeFile(file, bytes);
      const { id } = await server.uploadArtifact(file, { name, deviceTypes: ['qemu'] });
      artifacts[name] = { id, bytes };
    }
    configFile = writeGatewayConfig(dir, {
      UpstreamServer: { URL: server.url },
      HTTP: { Enabled: true, Listen: '127.0.0.1:0' },
      HTTPS: { Enabled: false },
      Features: {
        ArtifactsProxy: {
          Enabled: true,
          GatewayURL: 'http://127.0.0.1:1',
          DomainWhitelist: ['127.0.0.1'],
          ArtifactsCache: { Enabled: true, Path: cacheDir, SignatureSecret: secret },
        },
        mTLS: { MenderUsername: 'admin@example.com', MenderPassword: 'correcthorse' },
      },
    });
  });

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await server?.close();
    await store?.close();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('prints its help for each command, and a usage error as one line with exit 2', async () => {
    for (const sub of ['list', 'evict', 'verify', 'prewarm']) {
      const r = await run(['cache', sub, '--help']);
      assert.equal(r.code, 0);
      assert.match(r.stdout, new RegExp(`^Usage: mender-gateway cache ${sub}`));
    }
    const bad = await run(['cache', 'prune']);
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr, 'mender-gateway: cache: unknown command "prune" (list, evict, verify, prewarm) (see --help)\n');
    const noTarget = await run(['cache', 'prewarm', '--config', configFile]);
    assert.equal(noTarget.code, 2);
    assert.match(noTarget.stderr, /name a URL, an --artifact or a --deployment/);
  });

  it('prewarm --artifact fills the cache through the management API; list shows it; a second prewarm finds it cached', async () => {
    const r = await run(['cache', 'prewarm', '--now', '--artifact', artifacts.small!.id, '--config', configFile]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`prewarm: ${artifacts.small!.id} cached: 1\\.0 MiB, downloaded`));
    assert.doesNotMatch(r.stdout + r.stderr, /correcthorse|X-Amz-Signature/);
    assert.equal(md5(await cachedBytes('small')), md5(artifacts.small!.bytes));
    const entries = await listJson();
    assert.deepEqual(
      entries.map((e) => [e.artifact, e.state, e.size, e.hits]),
      [[artifacts.small!.id, 'complete', MiB, 0]],
    );
    const table = await run(['cache', 'list', '--config', configFile]);
    assert.match(table.stdout, /^ARTIFACT\s+STATE\s+SIZE\s+LAST USED\s+HITS\s+ENTRY\n/);
    assert.match(
      table.stdout,
      new RegExp(`${artifacts.small!.id}\\s+complete\\s+1\\.0 MiB\\s+\\d{4}-\\d\\d-\\d\\dT[\\d:]+Z\\s+0\\s+[0-9a-f]{12}`),
    );
    assert.match(table.stdout, /1 complete \(1\.0 MiB\), 0 filling or partial/);
    const again = await run(['cache', 'prewarm', '--now', '--artifact', artifacts.small!.id, '--config', configFile]);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /already cached \(1\.0 MiB\)/);
    assert.equal(store.stats(artifacts.small!.id).requests, 1, 'one origin download in all');
  });

  it('prewarm --deployment fills every artifact of the deployment, with progress lines off a terminal', async () => {
    store.setThrottle(2 * MiB);
    try {
      const dep = server.createDeployment({ name: 'd-other', artifactName: 'other', devices: ['dev-1'] });
      const r = await run(['cache', 'prewarm', '--now', '--deployment', dep.id, '--interval', '0.2', '--config', configFile]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        new RegExp(`prewarm: ${artifacts.other!.id} [\\d.]+ (KiB|MiB) of 2\\.0 MiB \\(\\d+%\\), [\\d.]+ (KiB|MiB)/s, ETA \\d+s`),
      );
      assert.match(r.stdout, new RegExp(`prewarm: ${artifacts.other!.id} cached: 2\\.0 MiB`));
      assert.equal(md5(await cachedBytes('other')), md5(artifacts.other!.bytes));
    } finally {
      store.setThrottle(0);
    }
    const unknown = await run(['cache', 'prewarm', '--now', '--deployment', 'no-such-deployment', '--config', configFile]);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stderr, 'mender-gateway: deployment no-such-deployment: not found on the Mender server\n');
  });

  it('prewarm refuses an origin outside the DomainWhitelist and fetches nothing', async () => {
    const origin = (await originOf('big')).href.replace('127.0.0.1', 'localhost');
    const r = await run(['cache', 'prewarm', '--now', origin, '--config', configFile]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /localhost:\d+ is not in Features\.ArtifactsProxy\.DomainWhitelist; nothing fetched/);
    assert.doesNotMatch(r.stderr, /X-Amz-Signature/, 'the presigned query is a credential');
    assert.equal(store.stats(artifacts.big!.id).requests, 0);
  });

  it('Ctrl-C keeps a partial file nothing serves; the next prewarm resumes it with a Range request', async () => {
    const origin = await originOf('big');
    store.setThrottle(1 * MiB);
    const child = start(['cache', 'prewarm', '--now', origin.href, '--config', configFile]);
    await until('1 MiB to arrive', async () =>
      (await listJson()).some((e) => e.artifact === artifacts.big!.id && e.state === 'filling' && e.bytes >= MiB),
    );
    child.kill('SIGINT');
    const stopped = await child.done;
    store.setThrottle(0);
    assert.equal(stopped.code, 130);
    assert.match(
      stopped.stderr,
      /interrupted: what arrived is kept as partial files \(never served\); run the same command again to resume/,
    );
    const partial = (await listJson()).find((e) => e.artifact === artifacts.big!.id)!;
    assert.equal(partial.state, 'partial');
    assert.ok(partial.bytes >= MiB && partial.bytes < 4 * MiB, `partial holds ${partial.bytes} bytes`);
    await assert.rejects(cachedBytes('big'), /ENOENT/, 'nothing half-visible');
    const table = await run(['cache', 'list', '--config', configFile]);
    assert.match(table.stdout, new RegExp(`${artifacts.big!.id}\\s+partial \\d+%\\s+4\\.0 MiB`));

    const resumed = await run(['cache', 'prewarm', '--now', origin.href, '--config', configFile]);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout, /cached: 4\.0 MiB, resumed at [\d.]+ MiB/);
    const ranges = store.requestLog.filter((l) => l.path.endsWith(artifacts.big!.id) && l.range).map((l) => l.range);
    assert.deepEqual(ranges, [`bytes=${partial.bytes}-`]);
    assert.equal(md5(await cachedBytes('big')), md5(artifacts.big!.bytes));
    assert.equal((await listJson()).find((e) => e.artifact === artifacts.big!.id)!.state, 'complete');
  });

  it('prewarm beside a running gateway: a device asking meanwhile follows the prewarm, one origin download in all, and counts a hit later', async () => {
    const gateway: GatewayProcess = await startGateway({ configFile, waitFor: ['http'], env: CLEAN_ENV });
    try {
      const origin = await originOf('follow');
      store.setThrottle(2 * MiB);
      const child = start(['cache', 'prewarm', '--now', origin.href, '--config', configFile]);
      await until('the prewarm to start filling', async () =>
        (await listJson()).some((e) => e.artifact === artifacts.follow!.id && e.state === 'filling' && e.bytes > 0),
      );
      const link = new URL(
        createLinkSigner({ secret: Buffer.from(secret, 'base64'), gatewayUrl: gateway.url('http') }).mint(
          origin.href,
          new Date(Date.now() + 600_000),
        ),
      );
      const device = await new Promise<Buffer>((resolve, reject) =>
        http
          .get(link, (res) => {
            assert.equal(res.statusCode, 200);
            const chunks: Buffer[] = [];
            res
              .on('data', (c: Buffer) => chunks.push(c))
              .on('end', () => resolve(Buffer.concat(chunks)))
              .on('error', reject);
          })
          .on('error', reject),
      );
      const r = await child.done;
      store.setThrottle(0);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(md5(device), md5(artifacts.follow!.bytes));
      assert.equal(store.stats(artifacts.follow!.id).requests, 1, 'the device followed the prewarm: one origin request');
      await new Promise<Buffer>((resolve, reject) =>
        http
          .get(link, (res) => {
            const c: Buffer[] = [];
            res.on('data', (d: Buffer) => c.push(d)).on('end', () => resolve(Buffer.concat(c)));
          })
          .on('error', reject),
      );
      await until(
        'the hit to be counted',
        async () => (await listJson()).find((e) => e.artifact === artifacts.follow!.id)?.hits === 1,
        5_000,
      );
    } finally {
      store.setThrottle(0);
      await gateway.stop();
    }
  });

  it('draws a progress bar per artifact on a terminal', async () => {
    store.setThrottle(2 * MiB);
    try {
      const command = [process.execPath, BIN, 'cache', 'prewarm', '--now', '--artifact', artifacts.tty!.id, '--config', configFile]
        .map((a) => `'${a}'`)
        .join(' ');
      // util-linux script(1) runs the command on a new pseudo-terminal and copies what it draws.
      const child = spawn('script', ['-qfec', `stty cols 160; ${command}`, '/dev/null'], {
        env: { ...CLEAN_ENV, TERM: 'xterm' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let screen = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (screen += d));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      assert.equal(code, 0, screen);
      assert.match(
        screen,
        new RegExp(
          `${artifacts.tty!.id} \\|[\\u2588\\u2591]{24}\\| \\d+% [\\d.]+ (KiB|MiB) of 3\\.0 MiB [\\d.]+ (B|KiB|MiB)/s ETA (\\d+s|\\?)`,
        ),
      );
      assert.match(screen, /\| 100% 3\.0 MiB of 3\.0 MiB/);
      // biome-ignore lint/suspicious/noControlCharactersInRegex: the terminal's escape sequences are what is checked
      assert.match(screen, /\x1b\[\d*[AGK]|\r/, 'redrawn in place');
      assert.match(screen, /cached: 3\.0 MiB/);
    } finally {
      store.setThrottle(0);
    }
  });

  it('verify finds a corrupted artifact, removes it and exits 1; then all is well', async () => {
    const file = objectPath(cacheLayout(cacheDir), entryId(cacheKey(await originOf('other'))));
    const fh = await fsp.open(file, 'r+');
    await fh.write(Buffer.from([0xff ^ artifacts.other!.bytes[1000]!]), 0, 1, 1000);
    await fh.close();
    const r = await run(['cache', 'verify', '--config', configFile]);
    assert.equal(r.code, 1);
    assert.match(
      r.stdout,
      new RegExp(`CORRUPT  ${artifacts.other!.id}: MD5 [0-9a-f]{32}, ${md5(artifacts.other!.bytes)} recorded; removed`),
    );
    assert.match(r.stdout, /^ok {7}/m);
    assert.match(r.stdout, /\d+ checked, 1 corrupt and removed\n$/);
    assert.equal(
      (await listJson()).some((e) => e.artifact === artifacts.other!.id),
      false,
    );
    const again = await run(['cache', 'verify', '--config', configFile]);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /, 0 corrupt\n$/);
  });

  it('evict removes one artifact by id, reports an unknown one, and --all empties the cache', async () => {
    const before = await listJson();
    assert.ok(before.some((e) => e.artifact === artifacts.small!.id));
    const one = await run(['cache', 'evict', artifacts.small!.id, 'no-such-artifact', '--config', configFile]);
    assert.equal(one.code, 1);
    assert.match(one.stdout, new RegExp(`evicted ${artifacts.small!.id} \\(complete, 1\\.0 MiB\\)`));
    assert.equal(one.stderr, 'mender-gateway: cache evict: no-such-artifact: not in the cache\n');
    assert.equal(
      (await listJson()).some((e) => e.artifact === artifacts.small!.id),
      false,
    );
    const all = await run(['cache', 'evict', '--all', '--config', configFile]);
    assert.equal(all.code, 0);
    assert.match(all.stdout, new RegExp(`${before.length - 1} evicted\\n$`));
    assert.deepEqual(await listJson(), []);
    assert.match((await run(['cache', 'list', '--config', configFile])).stdout, /^cache is empty/);
  });

  it('waits for the prewarm window before fetching anything; Ctrl-C while waiting fetches nothing', async () => {
    const now = new Date();
    const hh = (h: number) => String((now.getHours() + h) % 24).padStart(2, '0');
    const windowed = writeGatewayConfig(
      dir,
      {
        ...JSON.parse(await fsp.readFile(configFile, 'utf8')),
        Features: {
          ...JSON.parse(await fsp.readFile(configFile, 'utf8')).Features,
          ArtifactsProxy: {
            ...JSON.parse(await fsp.readFile(configFile, 'utf8')).Features.ArtifactsProxy,
            ArtifactsCache: { Enabled: true, Path: cacheDir, SignatureSecret: secret, PrewarmWindow: `${hh(2)}:00-${hh(3)}:00` },
          },
        },
      },
      'windowed.conf',
    );
    const requests = store.stats(artifacts.small!.id).requests;
    const child = start(['cache', 'prewarm', '--artifact', artifacts.small!.id, '--config', windowed]);
    await until('the waiting line', () => /waiting for the prewarm window/.test(child.out.stdout));
    assert.match(
      child.out.stdout,
      new RegExp(`waiting for the prewarm window ${hh(2)}:00-${hh(3)}:00 \\(opens in \\d+h\\d\\dm; --now ignores it\\)`),
    );
    child.kill('SIGINT');
    const r = await child.done;
    assert.equal(r.code, 130);
    assert.equal(store.stats(artifacts.small!.id).requests, requests, 'nothing fetched outside the window');
  });
});
