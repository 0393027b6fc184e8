// Import rules of lib/, checked by `make lint` (dependency-cruiser): no circles, and no import
// against the layer order of support/lint/layers.cjs (docs/architecture.md explains the layers).
const layers = require('./support/lint/layers.cjs');

const escapeDots = (name) => name.replace(/[.]/g, '\\.');
const pathOf = (layer) => (layer.endsWith('.ts') ? `^lib/${escapeDots(layer)}$` : `^lib/${escapeDots(layer)}/`);

// One rule per layer: it may not import any layer above it.
const layerRules = layers.slice(0, -1).map((layer, i) => ({
  name: `layer-${layer.replace(/\.ts$/, '')}`,
  severity: 'error',
  comment: `lib/${layer} sits below ${layers.slice(i + 1).join(', ')} (support/lint/layers.cjs): it imports none of them.`,
  from: { path: pathOf(layer) },
  to: { path: layers.slice(i + 1).map(pathOf) },
}));

// lib/cache in rooms, bottom first (docs/cache.md): the store (files on the cache path), the
// S3 shared cache (a second store), the fill (origin → store), serving (store or growing
// fill → device). A room imports only the rooms before it, and none imports the composition
// at lib/cache's top (artifact-cache.ts), which is the one place that puts them together.
const cacheRooms = ['store', 'shared', 'fill', 'serve'];
const roomPath = (room) => `^lib/cache/${room}/`;
const roomRules = cacheRooms.map((room, i) => ({
  name: `cache-room-${room}`,
  severity: 'error',
  comment: `lib/cache/${room} sits below ${[...cacheRooms.slice(i + 1), 'the composition (lib/cache/*.ts)'].join(', ')}: it imports none of them.`,
  from: { path: roomPath(room) },
  to: { path: [...cacheRooms.slice(i + 1).map(roomPath), '^lib/cache/[^/]+$'] },
}));
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...layerRules,
    ...roomRules,
    {
      name: 'every-folder-has-a-layer',
      severity: 'error',
      comment: 'A new folder or top-level file of lib/ gets its place in support/lint/layers.cjs.',
      from: { path: '^lib/' },
      to: { path: '^lib/', pathNot: layers.map(pathOf) },
    },
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A circle of imports: move the shared type or function to where it belongs (a module of its own, or the lower of the two).',
      from: { path: '^lib/' },
      to: { circular: true },
    },
    {
      name: 'commands-are-the-top',
      severity: 'error',
      comment: 'The operator commands (lib/commands) are loaded by the CLI only; nothing the gateway runs imports them.',
      from: { path: '^lib/', pathNot: ['^lib/commands/', '^lib/cli\\.ts$'] },
      to: { path: '^lib/commands/' },
    },
    {
      name: 'lib-does-not-import-tests',
      severity: 'error',
      comment: 'The shipped code never depends on tests, fixtures or benchmarks.',
      from: { path: '^lib/' },
      to: { path: '^(spec|fixtures|bench|support)/' },
    },
    {
      name: 'one-test-kit',
      severity: 'error',
      comment:
        'Benchmarks, fixtures and the kit itself share the test kit (spec/support), never a test folder or a test file: what two of them need moves into spec/support (docs/testing.md).',
      from: { path: '^(bench|fixtures|spec/support)/' },
      to: { path: ['^spec/(?!support/)', '[.]test[.]ts$'] },
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
