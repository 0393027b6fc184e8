'use strict';
// The gateway as one CommonJS file (esbuild), made from the tsc output in dist/ so it carries
// the build-time config validator (dist/lib/config/schema-validator.generated.js).
const { join } = require('node:path');
const esbuild = require('esbuild');

const ROOT = join(__dirname, '..', '..');

// validate-config.ts falls back to compiling the schema with ajv only when the generated
// validator is missing or stale; in the bundle it is neither, so ajv stays out (~1 MB).
const noAjvFallback = {
  name: 'no-ajv-fallback',
  setup(build) {
    build.onResolve({ filter: /^\.\/build-validator$/ }, () => ({ path: 'build-validator', namespace: 'stub' }));
    build.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({
      contents: 'exports.compileWithAjv = () => { throw new Error("the bundled config validator does not match the schema"); };',
      loader: 'js',
    }));
  },
};

// pkijs and asn1js (CRL parsing) are ~0.7 MB of the bundle, which every start would parse: they
// go into lib/crl-libs.js beside it, required only at the first CRL read (lib/mtls/crl.ts loads
// them lazily). Measured: without this split the bundle started ~20 % slower and idled 3.4 MiB higher.
const CRL_LIBS = 'crl-libs.js';
const crlLibsApart = {
  name: 'crl-libs-apart',
  setup(build) {
    build.onResolve({ filter: /^(pkijs|asn1js)$/ }, (args) => ({ path: args.path, namespace: 'crl-libs' }));
    build.onLoad({ filter: /.*/, namespace: 'crl-libs' }, (args) => ({
      // A computed path: esbuild leaves it a runtime require of the file beside the bundle.
      contents: `const file = require('node:path').join(__dirname, ${JSON.stringify(CRL_LIBS)}); module.exports = require(file)[${JSON.stringify(args.path)}];`,
      loader: 'js',
    }));
  },
};

// Both bundles: CommonJS for Node 22.12 or later (engines), whitespace and syntax minified only (names stay, so stack
// traces still name functions; the whole source is held in memory once loaded, and minified the
// bundle's idle RSS is the checkout's), licence comments at the end, the metafile for the notices.
const COMMON = {
  bundle: true,
  platform: 'node',
  target: 'node22.12',
  format: 'cjs',
  legalComments: 'eof',
  minifyWhitespace: true,
  minifySyntax: true,
  metafile: true,
  logLevel: 'warning',
};

/** lib/crl-libs.js: { pkijs, asn1js }, for the bundle's lazy CRL parser. */
async function bundleCrlLibs(outfile) {
  const stdin = {
    contents: "module.exports = { pkijs: require('pkijs'), asn1js: require('asn1js') };",
    resolveDir: ROOT,
    sourcefile: 'crl-libs-entry.js',
  };
  return (await esbuild.build({ ...COMMON, stdin, outfile })).metafile;
}

const KOFFI = 'koffi';
/**
 * What lib/node_modules/koffi of the release holds: its loader and licence, and its binaries for
 * glibc Linux on the release's architectures (by runtime.js's arch names). Nothing for musl:
 * there is no malloc_trim to call (OpenWrt), so the .ipk drops the package.
 */
const KOFFI_FILES = ['package.json', 'index.js', 'LICENSE.txt'];
const KOFFI_BINARIES = { amd64: 'build/koffi/linux_x64/koffi.node', arm64: 'build/koffi/linux_arm64/koffi.node' };

/** Writes outfile; returns esbuild's metafile (inputs and their sizes). */
async function bundleGateway(outfile) {
  const stdin = {
    // The bundle runs the CLI when executed, so cluster workers (fork of process.argv[1]) run it too;
    // first, as bin/gateway.js, a serving process without a young generation size starts with one.
    contents:
      "require('./dist/lib/server/young-generation.js').startWithSmallYoungGeneration(); require('./dist/lib/cli.js').main(process.argv.slice(2));",
    resolveDir: ROOT,
    sourcefile: 'mender-gateway-entry.js',
  };
  const plugins = [noAjvFallback, crlLibsApart];
  // koffi (malloc_trim, lib/server/memory-return.ts) has a native part esbuild cannot bundle:
  // it stays a runtime require, and stage.js puts the package beside the bundle (NATIVE).
  const external = [KOFFI];
  return (await esbuild.build({ ...COMMON, stdin, outfile, define: { MENDER_GATEWAY_BUNDLE: 'true' }, plugins, external })).metafile;
}

module.exports = { bundleGateway, bundleCrlLibs, CRL_LIBS, ROOT, KOFFI, KOFFI_FILES, KOFFI_BINARIES };
