'use strict';
// `make release-measure`: the shipped amd64 layout (the linux-x64 tarball unpacked: its node
// running its lib/mender-gateway.js, as /usr/bin/mender-gateway does in the .deb) against
// `node bin/gateway.js` from the checkout: time from spawn to the "listening" line, and RSS 1 s
// after, median of 5 starts each, on 127.0.0.1 with HTTP only, the ArtifactsProxy off and on
// (with its disk cache); then each package's file size and installed size.
// MEASURE_SEA=<file>: a single executable application of the same bundle, measured beside them.
const { execFileSync, spawn } = require('node:child_process');
const { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join, resolve } = require('node:path');
const { ROOT } = require('./bundle');
const { VERSION } = require('./stage');

const RUNS = Number(process.env.MEASURE_RUNS ?? 5);
const SETTLE_MS = 1000;

function config(dir, proxy) {
  return {
    HTTP: { Enabled: true, Listen: '127.0.0.1:0' },
    UpstreamServer: { URL: 'http://127.0.0.1:9' },
    Workers: 1,
    Features: {
      ReportJournal: { Enabled: false },
      ArtifactsProxy: proxy
        ? {
            Enabled: true,
            GatewayURL: 'http://127.0.0.1:8080',
            DomainWhitelist: ['s3.example.com'],
            ArtifactsCache: { Enabled: true, Path: join(dir, 'cache') },
          }
        : { Enabled: false },
    },
  };
}

const rssKiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

/** One start of [command, ...args]: ms to listening, RSS in KiB after SETTLE_MS. */
function once(argv, conf) {
  return new Promise((done, fail) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(argv[0], [...argv.slice(1), '--config', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let text = '';
    let startMs;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`no "listening" within 10 s:\n${text}`));
    }, 10_000);
    child.stderr.setEncoding('utf8').on('data', (chunk) => {
      text += chunk;
      if (startMs !== undefined || !/msg="?listening/.test(text)) return;
      startMs = Number(process.hrtime.bigint() - t0) / 1e6;
      setTimeout(() => {
        const rss = rssKiB(child.pid);
        clearTimeout(timer);
        child.once('exit', () => done({ startMs, rss }));
        child.kill('SIGTERM');
      }, SETTLE_MS);
    });
    child.once('exit', (code) => {
      if (startMs === undefined) {
        clearTimeout(timer);
        fail(new Error(`exited ${code}:\n${text}`));
      }
    });
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Starts alternate between the commands (after one discarded warm-up each), so a busy moment hits all. */
async function measure(commands, conf) {
  const runs = commands.map(() => []);
  for (const argv of commands) await once(argv, conf);
  for (let i = 0; i < RUNS; i++) for (const [k, argv] of commands.entries()) runs[k].push(await once(argv, conf));
  return runs.map((r) => ({ startMs: median(r.map((x) => x.startMs)), rssMiB: median(r.map((x) => x.rss)) / 1024 }));
}

const mib = (bytes) => `${(bytes / 1048576).toFixed(1)} MiB`;

/** File size and installed size of each package in the release directory. */
function sizes(releaseDir) {
  const rows = [];
  for (const arch of ['amd64', 'arm64']) {
    const deb = join(releaseDir, `mender-gateway_${VERSION}_${arch}.deb`);
    const kib = Number(execFileSync('dpkg-deb', ['-f', deb, 'Installed-Size'], { encoding: 'utf8' }).trim());
    rows.push([`mender-gateway_${VERSION}_${arch}.deb`, statSync(deb).size, kib * 1024]);
  }
  for (const name of [
    `mender-gateway-${VERSION}-linux-x64.tar.gz`,
    `mender-gateway-${VERSION}-linux-arm64.tar.gz`,
    `mender-gateway_${VERSION}_all.ipk`,
  ]) {
    const file = join(releaseDir, name);
    const listing = execFileSync(
      'sh',
      ['-c', name.endsWith('.ipk') ? 'tar -xzOf "$1" ./data.tar.gz | tar -tvz' : 'tar -tvzf "$1"', 'sh', file],
      {
        encoding: 'utf8',
        maxBuffer: 1 << 24,
      },
    );
    const unpacked = listing.split('\n').reduce((n, l) => n + (l.startsWith('-') ? Number(l.split(/\s+/)[2]) : 0), 0);
    rows.push([name, statSync(file).size, unpacked]);
  }
  return rows;
}

async function main() {
  const releaseDir = resolve(process.argv[2] ?? join(ROOT, 'release'));
  const dir = mkdtempSync(join(tmpdir(), 'gw-release-measure-'));
  try {
    execFileSync('tar', ['-xzf', join(releaseDir, `mender-gateway-${VERSION}-linux-x64.tar.gz`), '-C', dir]);
    const shipped = join(dir, `mender-gateway-${VERSION}`, 'x86_64');
    const commands = [
      ['checkout', [process.execPath, join(ROOT, 'bin', 'gateway.js')]],
      ['shipped', [join(shipped, 'node'), join(shipped, 'lib', 'mender-gateway.js')]],
    ];
    const sea = process.env.MEASURE_SEA;
    if (sea) {
      if (!existsSync(sea)) throw new Error(`MEASURE_SEA=${sea}: no such file`);
      commands.push(['SEA', [sea]]);
    }
    const f = (n, d = 0) => n.toFixed(d).padStart(9);
    process.stdout.write(
      `median of ${RUNS} starts; checkout on node ${process.version}; start = spawn to "listening", RSS ${SETTLE_MS} ms after\n`,
    );
    process.stdout.write(
      `  ${''.padEnd(18)} start ms:${commands.map(([n]) => n.padStart(9)).join('')} | RSS MiB:${commands.map(([n]) => n.padStart(9)).join('')}\n`,
    );
    for (const proxy of [false, true]) {
      const conf = join(dir, `proxy-${proxy}.conf`);
      writeFileSync(conf, JSON.stringify(config(dir, proxy)));
      const r = await measure(
        commands.map(([, argv]) => argv),
        conf,
      );
      process.stdout.write(
        `  ${`ArtifactsProxy ${proxy ? 'on' : 'off'}`.padEnd(18)}          ${r.map((x) => f(x.startMs)).join('')} |         ${r.map((x) => f(x.rssMiB, 1)).join('')}\n`,
      );
    }
    process.stdout.write('package sizes: file, installed (unpacked)\n');
    for (const [name, file, installed] of sizes(releaseDir))
      process.stdout.write(`  ${name.padEnd(42)} ${mib(file).padStart(10)} ${mib(installed).padStart(10)}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`measure: ${err.message}\n`);
  process.exit(1);
});
