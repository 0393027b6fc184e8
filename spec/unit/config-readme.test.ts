// The configuration table of docs/configuration.md (it was the README's) is generated from
// schema.json and the environment table; this keeps the committed copy current and the two
// tables consistent with each other.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { configKeys, renderConfigMarkdown } from '../../lib/config/config-table';
import { ENV_OVERRIDES } from '../../lib/config/env-overrides';

const PAGE = join(__dirname, '..', '..', '..', 'docs', 'configuration.md');
const START =
  '<!-- config-table:start (generated from lib/config/schema.json: UPDATE_GOLDEN=1 node --test dist/spec/unit/config-readme.test.js) -->\n';
const END = '<!-- config-table:end -->';

function section(page: string): { before: string; table: string; after: string } {
  const a = page.indexOf(START);
  const b = page.indexOf(END);
  assert.ok(a >= 0 && b > a, 'docs/configuration.md has the config-table markers');
  return { before: page.slice(0, a + START.length), table: page.slice(a + START.length, b), after: page.slice(b) };
}

test('every environment variable sets a key of the schema', () => {
  const paths = new Set(configKeys().map((k) => k.path));
  for (const row of ENV_OVERRIDES) assert.ok(paths.has(row.path.join('.')), `${row.env} → ${row.path.join('.')}`);
});

test('every key has an environment variable except the file-only ones', () => {
  const fileOnly = configKeys()
    .filter((k) => k.env.length === 0)
    .map((k) => k.path);
  assert.deepEqual(fileOnly, ['Features.DeviceSystem.DefaultInventory', 'DebugLog']);
});

test('every variable of the product 2.0.0 list, 2.0.0 mTLS expiry and 2.2.0 metrics is accepted', () => {
  const product =
    'ARTIFACTS_PROXY_CACHE_LINK_EXPIRE_DURATION, ARTIFACTS_PROXY_CACHE_ENABLED, ARTIFACTS_PROXY_CACHE_PATH, ARTIFACTS_PROXY_CACHE_SECRET, ARTIFACTS_PROXY_DOMAIN_WHITELIST, ARTIFACTS_PROXY_ENABLED, ARTIFACTS_PROXY_GATEWAY_URL, DEVICE_SYSTEM_ENABLED, DEVICE_SYSTEM_ID, HTTPS_ENABLED, HTTPS_LISTEN, HTTPS_MINIMUM_TLS_VERSION, HTTPS_SERVER_CERTIFICATE, HTTPS_SERVER_KEY, HTTP_ENABLED, HTTP_LISTEN, MTLS_BLACKLIST_PATH, MTLS_CA_CERTIFICATE, MTLS_ENABLED, MTLS_ENABLE_CACHE, MTLS_MENDER_PASSWORD, MTLS_MENDER_USERNAME, UPSTREAM_SERVER_CA_CERTIFICATE, UPSTREAM_SERVER_INSECURE_SKIP_VERIFY, UPSTREAM_SERVER_URL, MTLS_INSECURE_SKIP_CLIENT_EXPIRE_AFTER, METRICS_ENABLED, METRICS_LISTEN, UPSTREAM_SERVER'.split(
      ', ',
    );
  const ours = new Set(ENV_OVERRIDES.map((r) => r.env));
  for (const name of product) assert.ok(ours.has(name), name);
  assert.equal(new Set(ENV_OVERRIDES.map((r) => r.env)).size, ENV_OVERRIDES.length, 'no variable listed twice');
});

test('every key has an example written as JSON', () => {
  for (const key of configKeys()) {
    assert.notEqual(key.example, '', `${key.path}: add it to EXAMPLES in lib/config/config-table.ts`);
    assert.doesNotThrow(() => JSON.parse(key.example), key.path);
  }
});

test("a key is ours exactly when its variables are (the table's From column)", () => {
  for (const key of configKeys()) {
    for (const row of ENV_OVERRIDES.filter((r) => r.path.join('.') === key.path)) {
      assert.equal(row.ours ? 'ours' : 'product', key.origin, `${key.path} / ${row.env}`);
    }
  }
});

test("docs/configuration.md's key table is the generated one", () => {
  const rendered = renderConfigMarkdown();
  const parts = section(readFileSync(PAGE, 'utf8'));
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(PAGE, parts.before + rendered + parts.after);
  assert.equal(section(readFileSync(PAGE, 'utf8')).table, rendered, 'regenerate with UPDATE_GOLDEN=1');
});
