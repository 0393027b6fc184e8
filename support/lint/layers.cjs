// The layers of lib/, bottom first. A module may import its own layer and the layers before
// it, never one after it (.dependency-cruiser.cjs turns this list into rules; measure.cjs
// counts the imports against it). docs/architecture.md says what each one holds.
module.exports = [
  'config',
  // Bounded in-memory state (caps and ages for what devices leave behind).
  'state',
  // The device API's paths, defined once (pure data).
  'device-api.ts',
  'observe',
  'http',
  'server',
  'proxy',
  // The features, each above the ones it uses.
  'artifacts',
  'cache',
  'deployments',
  'device-system',
  'admin',
  'mtls',
  'journal',
  // The operator commands, then the wiring and the command line.
  'commands',
  'gateway.ts',
  'cli.ts',
];
