'use strict';
// `make release`: from a `make build` checkout, into release/ (or the directory given as
// argv[2]), then their sizes:
//   mender-gateway_<version>_<amd64|arm64>.deb          the gateway and its Node runtime
//   mender-gateway-<version>-linux-<x64|arm64>.tar.gz   the same, in the product's Yocto layout
//   mender-gateway_<version>_all.ipk                     OpenWrt, on the feed's node
//   mender-gateway-<version>-all.tar.gz                  no runtime: for a Node >= 22.12 of one's own
const { existsSync, mkdirSync, rmSync, statSync } = require('node:fs');
const { basename, join, resolve } = require('node:path');
const { ROOT } = require('./bundle');
const { stageRelease, VERSION } = require('./stage');
const { buildDeb, buildIpk, writeArchTarball, writeTarball } = require('./packages');
const { ARCHES, runtimeFor } = require('./runtime');

const kib = (n) => `${Math.round(n / 1024).toLocaleString('en')} KiB`;

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
  const files = [['bundle', join(stage, 'lib', 'mender-gateway.js')]];
  for (const arch of Object.keys(ARCHES)) {
    const runtime = runtimeFor(arch, { into: join(work, `runtime-${arch}`) });
    files.push([`deb ${arch}`, buildDeb(stage, VERSION, work, outDir, runtime)]);
    files.push([`tar ${arch}`, writeArchTarball(stage, name, runtime, work, outDir)]);
  }
  files.push(['ipk', buildIpk(stage, VERSION, work, outDir)], ['tar all', writeTarball(stage, name, outDir)]);
  return { files, stage };
}

async function main() {
  const outDir = resolve(process.argv[2] ?? join(ROOT, 'release'));
  mkdirSync(outDir, { recursive: true });
  const r = await buildRelease(outDir);
  process.stdout.write(`release ${VERSION} in ${outDir}\n`);
  for (const [what, file] of r.files) {
    process.stdout.write(`  ${what.padEnd(10)} ${kib(statSync(file).size).padStart(11)}  ${basename(file)}\n`);
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
