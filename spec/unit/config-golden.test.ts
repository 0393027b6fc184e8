// Golden loader cases (Caddy adapt-test style): fixtures/config/<case>.conf and/or <case>.env →
// <case>.expected.json, the normalized config with warnings, or every error line.
// After a deliberate change, regenerate with UPDATE_GOLDEN=1 and review the diff.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../lib/config/load-config';

const DIR = join(__dirname, '..', '..', '..', 'fixtures', 'config');

function readEnvFile(path: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}

function runCase(name: string): unknown {
  const conf = join(DIR, `${name}.conf`);
  const envFile = join(DIR, `${name}.env`);
  const env = existsSync(envFile) ? readEnvFile(envFile) : {};
  // No .conf: the missing default file of an environment-only container.
  const file = existsSync(conf) ? conf : join(DIR, `${name}.absent.conf`);
  try {
    const loaded = loadConfig({ file, explicit: false, env });
    return {
      file: loaded.file === null ? null : `${name}.conf`,
      fromEnv: loaded.fromEnv,
      warnings: loaded.warnings,
      config: loaded.config,
    };
  } catch (err) {
    if (err instanceof ConfigError) return { errors: err.lines };
    throw err;
  }
}

const cases = [
  ...new Set(
    readdirSync(DIR)
      .filter((f) => /\.(conf|env)$/.test(f))
      .map((f) => f.replace(/\.(conf|env)$/, '')),
  ),
].sort();

test('there are golden cases', () => assert.ok(cases.length >= 10, `found ${cases.length}`));

for (const name of cases) {
  test(`golden config: ${name}`, () => {
    const actual = JSON.parse(JSON.stringify(runCase(name)));
    const expectedPath = join(DIR, `${name}.expected.json`);
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(expectedPath, JSON.stringify(actual, null, 2) + '\n');
    assert.ok(existsSync(expectedPath), `missing ${expectedPath} (run with UPDATE_GOLDEN=1 and review it)`);
    assert.deepEqual(actual, JSON.parse(readFileSync(expectedPath, 'utf8')));
  });
}
