'use strict';
// The bundle copies code of npm packages, whose licenses (MIT, ISC, Apache-2.0, ...) ask that
// their notices travel with it: each bundled package's license file, collected from the metafile.
const { existsSync, readFileSync, readdirSync } = require('node:fs');
const { join } = require('node:path');
const { ROOT } = require('./bundle');

/** The node_modules/<name> (or @scope/name) directories esbuild took input from. */
function bundledPackages(metafile) {
  const dirs = new Set();
  for (const input of Object.keys(metafile.inputs)) {
    const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m) dirs.add(m[1]);
  }
  return [...dirs].sort();
}

/** The notices of the bundled packages, then of `copied` (node_modules/<name> whose files are shipped as they are). */
function thirdPartyNotices(metafile, copied = []) {
  const parts = [];
  for (const dir of [...bundledPackages(metafile), ...copied]) {
    const abs = join(ROOT, dir);
    const pkg = JSON.parse(readFileSync(join(abs, 'package.json'), 'utf8'));
    const file = existsSync(abs) ? readdirSync(abs).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f)) : undefined;
    const text = file
      ? readFileSync(join(abs, file), 'utf8').trim()
      : `(no license file in the package; package.json says: ${pkg.license ?? 'nothing'})`;
    parts.push(`${'='.repeat(72)}\n${pkg.name}@${pkg.version} (${pkg.license ?? 'unknown'})\n${'='.repeat(72)}\n${text}\n`);
  }
  return `Packages bundled into lib/mender-gateway.js or shipped beside it (${copied.join(', ') || 'none'}), with their licenses.\n\n${parts.join('\n')}`;
}

module.exports = { thirdPartyNotices, bundledPackages };
