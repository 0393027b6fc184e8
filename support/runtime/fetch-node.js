'use strict';
// `node support/runtime/fetch-node.js oldest|previous`: the Node runtime of support/runtime/runtimes.json
// (the oldest supported, the previous one for the benchmarks' column) from the npm registry, checked
// against its pinned integrity as the release's runtimes are (support/release/runtime.js), unpacked
// once under node_modules/.cache/runtimes/; prints the path of its `node`. One line and exit 1 on
// any failure.
const { existsSync, readFileSync, renameSync } = require('node:fs');
const { join } = require('node:path');
const { CACHE, packedRuntime, unpackRuntime } = require('../release/runtime');

const UNPACKED = join(__dirname, '..', '..', 'node_modules', '.cache', 'runtimes');

function runtimeOf(which) {
  const pinned = JSON.parse(readFileSync(join(__dirname, 'runtimes.json'), 'utf8'))[which];
  if (!pinned || typeof pinned !== 'object') throw new Error(`unknown runtime "${which}" (runtimes.json has oldest, previous)`);
  return pinned;
}

/** The `node` of a pinned runtime, unpacked once; renamed into place whole, so a cut run leaves no half. */
function fetchRuntime(pinned) {
  const dir = join(UNPACKED, `${pinned.name}-${pinned.version}`);
  const node = join(dir, 'bin', 'node');
  if (existsSync(node)) return node;
  const tmp = `${dir}.${process.pid}`;
  unpackRuntime(packedRuntime({ ...pinned, source: 'support/runtime/runtimes.json' }, CACHE), tmp);
  renameSync(tmp, dir);
  return node;
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
