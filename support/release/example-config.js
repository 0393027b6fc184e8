'use strict';
// The shipped mender-gateway.conf: every key of lib/config/schema.json with its default (from
// config-table's configKeys(), as docs/configuration.md's table), plus the two values without which the
// gateway has nothing to serve: a listener and the upstream server. JSON allows no comments;
// INSTALL and docs/configuration.md say what each key does.
const { join } = require('node:path');
const { ROOT } = require('./bundle');

const SET = { 'HTTP.Enabled': true, 'UpstreamServer.URL': 'https://hosted.mender.io' };

function exampleConfig() {
  const { configKeys } = require(join(ROOT, 'dist', 'lib', 'config', 'config-table.js'));
  const config = {};
  for (const row of configKeys()) {
    const path = row.path.split('.');
    let node = config;
    for (const name of path.slice(0, -1)) node = node[name] ??= {};
    node[path[path.length - 1]] = row.path in SET ? SET[row.path] : row.default;
  }
  return config;
}

/** The gateway's own loader and file checks on the file: problems as lines (none when it loads). */
function checkExample(file) {
  const { loadConfig, ConfigError } = require(join(ROOT, 'dist', 'lib', 'config', 'load-config.js'));
  const { checkConfigFiles } = require(join(ROOT, 'dist', 'lib', 'config', 'check-files.js'));
  try {
    const loaded = loadConfig({ file, explicit: true, env: {} });
    return [...loaded.warnings, ...checkConfigFiles(loaded.config)];
  } catch (err) {
    return err instanceof ConfigError ? err.lines : [String(err)];
  }
}

module.exports = { exampleConfig, checkExample };
