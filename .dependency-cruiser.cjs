// Import rules of lib/, checked by `make lint` (dependency-cruiser): no circles, the layers
// below hold. The folder layers as they stand are in docs/architecture.md; rules join this file
// as the folders come into order.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A circle of imports: move the shared type or function to where it belongs (a module of its own, or the lower of the two).',
      from: { path: '^lib/' },
      to: { circular: true },
    },
    {
      name: 'config-is-the-bottom',
      severity: 'error',
      comment: 'lib/config is read by every feature: it imports nothing else of lib/.',
      from: { path: '^lib/config/' },
      to: { path: '^lib/', pathNot: '^lib/config/' },
    },
    {
      name: 'commands-are-the-top',
      severity: 'error',
      comment: 'The operator commands (lib/commands) are loaded by the CLI only; nothing the gateway runs imports them.',
      from: { path: '^lib/', pathNot: ['^lib/commands/', '^lib/cli\\.ts$'] },
      to: { path: '^lib/commands/' },
    },
    {
      name: 'only-the-cli-starts-the-gateway',
      severity: 'error',
      comment: 'lib/cli.ts and lib/gateway.ts are the top of the tree: no module below imports them.',
      from: { path: '^lib/', pathNot: '^lib/cli\\.ts$' },
      to: { path: '^lib/(cli|gateway)\\.ts$' },
    },
    {
      name: 'lib-does-not-import-tests',
      severity: 'error',
      comment: 'The shipped code never depends on tests, fixtures or benchmarks.',
      from: { path: '^lib/' },
      to: { path: '^(spec|fixtures|bench|support)/' },
    },
  ],
  options: {
    tsConfig: { fileName: 'tsconfig.json' },
    // Type-only imports count: a circle of types is still a circle for the reader.
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
  },
};
