'use strict';
// `node support/runtime/fetch-node.js oldest|previous`: the Node runtime of support/runtime/runtimes.json
// from the npm registry (npm pack, so the machine's npm configuration and cache apply), checked
// against its pinned integrity, unpacked once under node_modules/.cache/runtimes/; prints the
// path of its `node`. One readable line and exit 1 on any failure.
const { createHash } = require('node:crypto');
const { execFileSync } = require('node:child_process');
const { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } = require('node:fs');
const { join } = require('node:path');

const ROOT = join(__dirname, '..', '..');
const CACHE = join(ROOT, 'node_modules', '.cache', 'runtimes');

/** The `node` of name@version (a node-linux-<arch> package), fetched and verified once. */
function fetchRuntime({ name, version, integrity }) {
  const dir = join(CACHE, `${name}-${version}`);
  const node = join(dir, 'bin', 'node');
  if (existsSync(node)) return node;
  mkdirSync(CACHE, { recursive: true });
  const work = mkdtempSync(join(CACHE, '.fetch-'));
  try {
    const out = execFileSync('npm', ['pack', `${name}@${version}`, '--pack-destination', work, '--json', '--silent'], {
      encoding: 'utf8',
      timeout: 300_000,
    });
    const file = join(work, JSON.parse(out)[0].filename);
    const [algo, want] = integrity.split('-');
    const got = createHash(algo).update(readFileSync(file)).digest('base64');
    if (got !== want) throw new Error(`${name}@${version}: the registry's tarball is not the pinned one (${algo} ${got})`);
    // Only the binary and its licence: the headers and docs are half the package.
    execFileSync('tar', ['-xzf', file, '-C', work, 'package/bin/node', 'package/LICENSE'], { timeout: 120_000 });
    // Renamed into place whole, so a cut fetch never leaves a half-written runtime behind.
    renameSync(join(work, 'package'), dir);
    return node;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function runtimeOf(which) {
  const pinned = JSON.parse(readFileSync(join(__dirname, 'runtimes.json'), 'utf8'))[which];
  if (!pinned || typeof pinned !== 'object') throw new Error(`unknown runtime "${which}" (runtimes.json has oldest, previous)`);
  return pinned;
}

if (require.main === module) {
  try {
    process.stdout.write(`${fetchRuntime(runtimeOf(process.argv[2] ?? ''))}\n`);
  } catch (err) {
    process.stderr.write(`fetch-node: ${err.message.split('\n')[0]}\n`);
    process.exit(1);
  }
}

module.exports = { fetchRuntime, runtimeOf };
