'use strict';
// `make release`: from a `make build` checkout, into release/ (or the directory
// given as argv[2]): mender-gateway-<version>.tar.gz, mender-gateway_<version>_all.deb and
// mender-gateway_<version>_all.ipk, then their sizes.
const { existsSync, mkdirSync, rmSync, statSync } = require('node:fs');
const { basename, join, resolve } = require('node:path');
const { ROOT } = require('./bundle');
const { stageRelease, VERSION } = require('./stage');
const { buildDeb, buildIpk, writeTarball } = require('./packages');

const kib = (n) => `${(n / 1024).toFixed(0)} KiB`;

async function buildRelease(outDir) {
  if (!existsSync(join(ROOT, 'dist', 'lib', 'config', 'schema-validator.generated.js'))) {
    throw new Error('dist/ is not built (or lacks the generated config validator): run `make build` first');
  }
  const work = join(outDir, 'work');
  rmSync(work, { recursive: true, force: true });
  const name = `mender-gateway-${VERSION}`;
  const stage = join(work, name);
  mkdirSync(stage, { recursive: true });
  await stageRelease(stage);
  const files = {
    tarball: writeTarball(stage, name, outDir),
    deb: buildDeb(stage, VERSION, work, outDir),
    ipk: buildIpk(stage, VERSION, work, outDir),
  };
  return { ...files, bundle: join(stage, 'lib', 'mender-gateway.js'), stage };
}

async function main() {
  const outDir = resolve(process.argv[2] ?? join(ROOT, 'release'));
  mkdirSync(outDir, { recursive: true });
  const r = await buildRelease(outDir);
  process.stdout.write(`release ${VERSION} in ${outDir}\n`);
  for (const [what, file] of [
    ['bundle', r.bundle],
    ['tarball', r.tarball],
    ['deb', r.deb],
    ['ipk', r.ipk],
  ]) {
    process.stdout.write(`  ${what.padEnd(8)} ${kib(statSync(file).size).padStart(9)}  ${basename(file)}\n`);
  }
  rmSync(join(outDir, 'work'), { recursive: true, force: true }); // the packages hold it all
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`build-release: ${err.message}\n`);
    process.exit(1);
  });
}

module.exports = { buildRelease };
