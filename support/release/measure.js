'use strict';
// `make release-measure`: the released gateway (the tarball, unpacked) against `node bin/gateway.js`
// from the checkout: time from spawn to the "listening" line, and RSS 1 s after, median of 5
// starts each, on 127.0.0.1 with HTTP only, the ArtifactsProxy off and on (with its disk cache).
const { execFileSync, spawn } = require('node:child_process');
const { mkdtempSync, readFileSync, rmSync, writeFileSync } = require('node:fs');
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

/** One start: ms to listening, RSS in KiB after SETTLE_MS. */
function once(script, conf) {
  return new Promise((done, fail) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, [script, '--config', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
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

/** Starts alternate between the scripts (after one discarded warm-up each), so a busy moment hits both. */
async function measure(scripts, conf) {
  const runs = scripts.map(() => []);
  for (const script of scripts) await once(script, conf);
  for (let i = 0; i < RUNS; i++) for (const [k, script] of scripts.entries()) runs[k].push(await once(script, conf));
  return runs.map((r) => ({ startMs: median(r.map((x) => x.startMs)), rssMiB: median(r.map((x) => x.rss)) / 1024 }));
}

async function main() {
  const releaseDir = resolve(process.argv[2] ?? join(ROOT, 'release'));
  const dir = mkdtempSync(join(tmpdir(), 'gw-release-measure-'));
  try {
    execFileSync('tar', ['-xzf', join(releaseDir, `mender-gateway-${VERSION}.tar.gz`), '-C', dir]);
    const bundled = join(dir, `mender-gateway-${VERSION}`, 'lib', 'mender-gateway.js');
    const checkout = join(ROOT, 'bin', 'gateway.js');
    const rows = [];
    for (const proxy of [false, true]) {
      const conf = join(dir, `proxy-${proxy}.conf`);
      writeFileSync(conf, JSON.stringify(config(dir, proxy)));
      const [a, b] = await measure([checkout, bundled], conf);
      rows.push([`ArtifactsProxy ${proxy ? 'on ' : 'off'}`, a, b]);
    }
    const f = (n, d = 0) => n.toFixed(d).padStart(8);
    process.stdout.write(`median of ${RUNS} starts, node ${process.version}; start = spawn to "listening", RSS ${SETTLE_MS} ms after\n`);
    process.stdout.write('                      start ms: checkout  bundle   ratio | RSS MiB: checkout  bundle   ratio\n');
    for (const [name, a, b] of rows) {
      process.stdout.write(
        `  ${name.padEnd(18)}         ${f(a.startMs)}${f(b.startMs)}${f(b.startMs / a.startMs, 2)} |         ${f(a.rssMiB, 1)}${f(b.rssMiB, 1)}${f(b.rssMiB / a.rssMiB, 2)}\n`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`measure: ${err.message}\n`);
  process.exit(1);
});
