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

/** Writes outfile; returns esbuild's metafile (inputs and their sizes). */
async function bundleGateway(outfile) {
  const result = await esbuild.build({
    stdin: {
      // The bundle runs the CLI when executed, so cluster workers (fork of process.argv[1]) run it too.
      contents: "require('./dist/lib/cli.js').main(process.argv.slice(2));",
      resolveDir: ROOT,
      sourcefile: 'mender-gateway-entry.js',
    },
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    outfile,
    define: { MENDER_GATEWAY_BUNDLE: 'true' },
    plugins: [noAjvFallback],
    legalComments: 'eof',
    // Whitespace and syntax only: names stay, so stack traces still name functions. The whole
    // source is held in memory once loaded; minified, the bundle's idle RSS is the checkout's.
    minifyWhitespace: true,
    minifySyntax: true,
    metafile: true,
    logLevel: 'warning',
  });
  return result.metafile;
}

module.exports = { bundleGateway, ROOT };
