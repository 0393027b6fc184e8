// Each loader error and warning, one case each: the exact line an operator sees.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findJsonSyntaxError } from '../../lib/config/json-syntax-error';
import { ConfigError, loadConfig } from '../../lib/config/load-config';

const dir = mkdtempSync(join(tmpdir(), 'gw-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const BASE_ENV = { UPSTREAM_SERVER_URL: 'https://hosted.mender.io', HTTP_ENABLED: 'true' };
let counter = 0;

function fileWith(text: string): string {
  const path = join(dir, `case-${++counter}.conf`);
  writeFileSync(path, text);
  return path;
}

function errorsOf(config: unknown, env: NodeJS.ProcessEnv = BASE_ENV): string[] {
  const file = fileWith(typeof config === 'string' ? config : JSON.stringify(config));
  try {
    loadConfig({ file, explicit: true, env });
  } catch (err) {
    if (err instanceof ConfigError) return err.lines;
    throw err;
  }
  assert.fail('expected a ConfigError');
}

const HOSTPORT = 'must be host:port (":443", "127.0.0.1:8080", "[::1]:8443")';
const DURATION = 'must be a positive Go duration such as "90s", "30m" or "1h30m"';

const cases: [string, unknown, NodeJS.ProcessEnv | undefined, string[]][] = [
  ['bad listen', { HTTPS: { Listen: '443x' } }, undefined, [`HTTPS.Listen: ${HOSTPORT}, got "443x"`]],
  ['port only', { HTTP: { Listen: '8080' } }, undefined, [`HTTP.Listen: ${HOSTPORT}, got "8080"`]],
  ['port out of range', { Metrics: { Listen: ':65536' } }, undefined, [`Metrics.Listen: ${HOSTPORT}, got ":65536"`]],
  ['unbracketed IPv6', { HTTP: { Listen: '::1:80' } }, undefined, [`HTTP.Listen: ${HOSTPORT}, got "::1:80"`]],
  ['bad IPv4', { HTTP: { Listen: '300.1.1.1:80' } }, undefined, [`HTTP.Listen: ${HOSTPORT}, got "300.1.1.1:80"`]],
  [
    'boolean as string',
    { HTTP: { Enabled: 'true' } },
    {},
    [
      'HTTP.Enabled: must be a boolean (true or false), got "true"',
      'UpstreamServer.URL: required (the Mender server to proxy to), got nothing',
    ],
  ],
  [
    'TLS version',
    { HTTPS: { MinimumTLSVersion: 1.2 } },
    undefined,
    ['HTTPS.MinimumTLSVersion: must be a string, got 1.2', 'HTTPS.MinimumTLSVersion: must be one of "1.0", "1.1", "1.2", "1.3", got 1.2'],
  ],
  [
    'TLS version unknown',
    { HTTPS: { MinimumTLSVersion: 'TLS1.3' } },
    undefined,
    ['HTTPS.MinimumTLSVersion: must be one of "1.0", "1.1", "1.2", "1.3", got "TLS1.3"'],
  ],
  [
    'URL without scheme',
    { UpstreamServer: { URL: 'hosted.mender.io' } },
    { HTTP_ENABLED: '1' },
    ['UpstreamServer.URL: must be an http:// or https:// URL with a host, got "hosted.mender.io"'],
  ],
  ['duration without unit', { UpstreamServer: { Timeout: '60' } }, undefined, [`UpstreamServer.Timeout: ${DURATION}, got "60"`]],
  ['zero duration', { ShutdownTimeout: '0s' }, undefined, [`ShutdownTimeout: ${DURATION}, got "0s"`]],
  [
    'negative duration',
    { Features: { ArtifactsProxy: { ArtifactsCache: { LinkExpireDuration: '-30m' } } } },
    undefined,
    [`Features.ArtifactsProxy.ArtifactsCache.LinkExpireDuration: ${DURATION}, got "-30m"`],
  ],
  [
    'day unit',
    { Features: { ArtifactsProxy: { ArtifactsCache: { LinkExpireDuration: '1d' } } } },
    undefined,
    [`Features.ArtifactsProxy.ArtifactsCache.LinkExpireDuration: ${DURATION}, got "1d"`],
  ],
  [
    'MaxSize fraction',
    { Features: { ArtifactsProxy: { ArtifactsCache: { MaxSize: 1.5 } } } },
    undefined,
    ['Features.ArtifactsProxy.ArtifactsCache.MaxSize: must be an integer, got 1.5'],
  ],
  [
    'secret never echoed',
    { Features: { ArtifactsProxy: { ArtifactsCache: { SignatureSecret: 'hunter2hunter' } } } },
    undefined,
    [
      'Features.ArtifactsProxy.ArtifactsCache.SignatureSecret: must be standard base64 (A-Z a-z 0-9 + /, = padding), got [redacted, 13 characters]',
    ],
  ],
  [
    'password of wrong type never echoed',
    { Features: { mTLS: { MenderPassword: 12345 } } },
    undefined,
    ['Features.mTLS.MenderPassword: must be a string, got [redacted]'],
  ],
  [
    'S3 credentials of wrong type never echoed',
    {
      Features: {
        ArtifactsProxy: { ArtifactsCache: { S3: { AccessKeyID: ['AKIAEXAMPLEKEYID'], SecretAccessKey: { v: 'wJalrXUtnFEMI' } } } },
      },
    },
    undefined,
    [
      'Features.ArtifactsProxy.ArtifactsCache.S3.AccessKeyID: must be a string, got [redacted]',
      'Features.ArtifactsProxy.ArtifactsCache.S3.SecretAccessKey: must be a string, got [redacted]',
    ],
  ],
  [
    'a secret written in place of its parent object is not echoed either',
    { Features: { mTLS: ['MenderPassword', 's3cret-pass'], ArtifactsProxy: { ArtifactsCache: { S3: 'AKIAEXAMPLEKEYID:wJalrXUtnFEMI' } } } },
    undefined,
    [
      'Features.ArtifactsProxy.ArtifactsCache.S3: must be an object, got [redacted, 30 characters]',
      'Features.mTLS: must be an object, got [redacted]',
    ],
  ],
  [
    'inventory item missing Value',
    { Features: { DeviceSystem: { DefaultInventory: [{ Name: 'region' }] } } },
    undefined,
    ['Features.DeviceSystem.DefaultInventory[0].Value: required, got nothing'],
  ],
  [
    'inventory list of objects',
    { Features: { DeviceSystem: { DefaultInventory: [{ Name: 'a', Value: [{}] }] } } },
    undefined,
    ['Features.DeviceSystem.DefaultInventory[0].Value[0]: must be a string, a number or a boolean (true or false), got {}'],
  ],
  [
    'inventory not a list',
    { Features: { DeviceSystem: { DefaultInventory: { region: 'eu' } } } },
    undefined,
    ['Features.DeviceSystem.DefaultInventory: must be a list, got {"region":"eu"}'],
  ],
  ['section not an object', { HTTPS: true }, undefined, ['HTTPS: must be an object, got true']],
  ['top level not an object', [], undefined, ['(configuration): must be an object, got []']],
  [
    'whitelist entry empty',
    { Features: { ArtifactsProxy: { DomainWhitelist: ['s3.amazonaws.com', ''] } } },
    undefined,
    ['Features.ArtifactsProxy.DomainWhitelist[1]: must not be empty, got ""'],
  ],
  [
    'no listener',
    {},
    { UPSTREAM_SERVER_URL: 'https://hosted.mender.io' },
    ['HTTP.Enabled, HTTPS.Enabled: at least one listener must be enabled, got both false'],
  ],
  ['no upstream', {}, { HTTP_ENABLED: 'true' }, ['UpstreamServer.URL: required (the Mender server to proxy to), got nothing']],
  [
    'HTTPS without files',
    { HTTPS: { Enabled: true } },
    undefined,
    [
      'HTTPS.ServerCertificate: required when HTTPS.Enabled is true, got nothing',
      'HTTPS.ServerKey: required when HTTPS.Enabled is true, got nothing',
    ],
  ],
  [
    'artifact proxy without GatewayURL',
    { Features: { ArtifactsProxy: { Enabled: true } } },
    undefined,
    ['Features.ArtifactsProxy.GatewayURL: required when ArtifactsProxy.Enabled is true, got nothing'],
  ],
  [
    'mTLS without anything',
    { Features: { mTLS: { Enabled: true } } },
    undefined,
    [
      'Features.mTLS.CACertificate: required when mTLS.Enabled is true, got nothing',
      'Features.mTLS.MenderUsername: required when mTLS.Enabled is true, got nothing',
      'Features.mTLS.MenderPassword: required when mTLS.Enabled is true, got nothing',
      'Features.mTLS.Enabled: requires HTTPS.Enabled (client certificates need TLS), got HTTPS.Enabled false',
    ],
  ],
  [
    'device system without id',
    { Features: { DeviceSystem: { Enabled: true } } },
    undefined,
    ['Features.DeviceSystem.SystemID: required when DeviceSystem.Enabled is true, got nothing'],
  ],
  [
    'env bool',
    {},
    { ...BASE_ENV, HTTPS_ENABLED: 'yes' },
    ['HTTPS_ENABLED: must be a boolean (1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False), got "yes"'],
  ],
  [
    'env integer',
    {},
    { ...BASE_ENV, ARTIFACTS_PROXY_CACHE_MAX_SIZE: '-5' },
    ['ARTIFACTS_PROXY_CACHE_MAX_SIZE: must be a non-negative integer, got "-5"'],
  ],
  [
    'env list',
    {},
    { ...BASE_ENV, ARTIFACTS_PROXY_DOMAIN_WHITELIST: '[1]' },
    ['ARTIFACTS_PROXY_DOMAIN_WHITELIST: must be a JSON array of strings, got "[1]"'],
  ],
  [
    'env value named by its variable',
    {},
    { ...BASE_ENV, HTTPS_LISTEN: '443x' },
    [`HTTPS.Listen: ${HOSTPORT}, got "443x" (from HTTPS_LISTEN)`],
  ],
  [
    'env duration',
    {},
    { ...BASE_ENV, UPSTREAM_SERVER_TIMEOUT: '5 s' },
    [`UpstreamServer.Timeout: ${DURATION}, got "5 s" (from UPSTREAM_SERVER_TIMEOUT)`],
  ],
];

for (const [name, config, env, expected] of cases) {
  test(`config error: ${name}`, () => assert.deepEqual(errorsOf(config, env), expected));
}

test('valid listen addresses pass', () => {
  for (const listen of [':443', ':0', '127.0.0.1:8080', '0.0.0.0:80', '[::1]:8443', '[::]:443', 'localhost:9102', 'gateway.local:8080']) {
    const file = fileWith(JSON.stringify({ HTTP: { Listen: listen } }));
    assert.equal(loadConfig({ file, explicit: true, env: BASE_ENV }).config.HTTP.Listen, listen);
  }
});

test('malformed JSON: one line with the file, line and column', () => {
  const file = fileWith('{\n  "HTTP": { "Enabled": true, }\n}\n');
  assert.throws(
    () => loadConfig({ file, explicit: true, env: BASE_ENV }),
    (err: ConfigError) => {
      assert.equal(err.lines.length, 1);
      assert.match(err.lines[0], new RegExp(`^${file}: invalid JSON at line 2 column 30: \\S`));
      return true;
    },
  );
});

test('truncated JSON points at its end', () => {
  const file = fileWith('{\n  "HTTP": {');
  assert.throws(
    () => loadConfig({ file, explicit: true, env: BASE_ENV }),
    (err: ConfigError) => {
      assert.equal(err.lines.length, 1);
      assert.match(err.lines[0], new RegExp(`^${file}: invalid JSON at line 2 column 12: \\S`));
      return true;
    },
  );
});

test('an empty file is malformed JSON', () => {
  const file = fileWith('');
  assert.throws(
    () => loadConfig({ file, explicit: true, env: BASE_ENV }),
    (err: ConfigError) => {
      assert.deepEqual(err.lines, [
        `${file}: invalid JSON at line 1 column 1: expected a value (a "string", a number, true, false, null, an object or a list), found the end of the file`,
      ]);
      return true;
    },
  );
});

// Every way JSON can be wrong: the line names where and what was expected, quotes none of the
// file (the value beside a syntax error is often the password), and agrees with JSON.parse.
const SYNTAX: [string, string, RegExp][] = [
  ['unquoted value', '{"MenderPassword": s3cret, "a": 1}', /line 1 column 20: expected a value .*, found a letter$/],
  ['missing comma', '{"a": "x",\n "MenderPassword": "s3cret" "b": 2}', /line 2 column 29: expected ',' or '}' after a value, found '"'$/],
  ['unterminated string', '{"MenderPassword": "s3cret', /line 1 column 27: expected a closing '"', found the end of the file$/],
  ['raw control character', '{"MenderPassword": "s3\u0001cret"}', /column 23: expected a closing '"' \(a control character/],
  ['bad escape', '{"MenderPassword": "s3\\xcret"}', /column 24: expected an escape/],
  ['short unicode escape', '{"MenderPassword": "\\u12s3cret"}', /column 23: expected four hex digits/],
  ['missing colon', '{"MenderPassword" "s3cret"}', /column 19: expected ':' after the key, found '"'$/],
  ['trailing comma in a list', '{"a": [1,]}', /column 10: expected a value .*, found ']'$/],
  ['bare word', 'tru', /column 1: expected a value/],
  ['number without digits', '{"a": -x}', /column 8: expected a digit, found a letter$/],
  ['leading zero', '{"a": 01}', /column 8: expected ',' or '}' after a value, found a digit$/],
  ['fraction without digits', '[1.]', /column 4: expected a digit after the decimal point, found ']'$/],
  ['exponent without digits', '[1e+]', /column 5: expected a digit in the exponent, found ']'$/],
  ['text after the document', '{} s3cret', /column 4: expected the end of the file after the value, found a letter$/],
  ['list not closed', '[[1]', /column 5: expected ',' or ']' after a value, found the end of the file$/],
];
for (const [name, text, expected] of SYNTAX) {
  test(`malformed JSON (${name}): position and expectation, no text of the file`, () => {
    assert.throws(() => JSON.parse(text));
    const [line] = errorsOf(text);
    assert.match(line, /: invalid JSON at line [0-9]+ column [0-9]+: expected /);
    assert.match(line, expected);
    assert.doesNotMatch(line, /s3cret|cret|MenderPassword|tru\b/);
  });
}

test('the syntax check accepts what JSON.parse accepts, nesting included', () => {
  for (const text of ['{"a": [true, false, null, -0, 1.5e+10, "\\u00e9\\n"], "b": {}}', ` ${'['.repeat(50_000)}${']'.repeat(50_000)} `]) {
    JSON.parse(text);
    assert.equal(findJsonSyntaxError(text), null);
  }
});

test('a file named by --config must exist', () => {
  const file = join(dir, 'absent.conf');
  assert.throws(
    () => loadConfig({ file, explicit: true, env: BASE_ENV }),
    (err: ConfigError) => {
      assert.deepEqual(err.lines, [`${file}: cannot read configuration file: no such file`]);
      return true;
    },
  );
});

test('a missing default file is not an error: the environment configures the gateway', () => {
  const loaded = loadConfig({ file: join(dir, 'absent-default.conf'), explicit: false, env: BASE_ENV });
  assert.equal(loaded.file, null);
  assert.equal(loaded.config.UpstreamServer.URL, 'https://hosted.mender.io');
});

test('a directory is not a config file, even at the default path', () => {
  const sub = join(dir, 'a-directory.conf');
  mkdirSync(sub);
  assert.throws(
    () => loadConfig({ file: sub, explicit: false, env: BASE_ENV }),
    (err: ConfigError) => {
      assert.deepEqual(err.lines, [`${sub}: cannot read configuration file: is a directory, not a file`]);
      return true;
    },
  );
});

test('a UTF-8 byte order mark is tolerated', () => {
  const file = fileWith('\ufeff{"DebugLog": true}');
  assert.equal(loadConfig({ file, explicit: true, env: BASE_ENV }).config.DebugLog, true);
});

test('the result is deeply frozen, and each load gets fresh defaults', () => {
  const file = fileWith('{}');
  const first = loadConfig({ file, explicit: true, env: BASE_ENV }).config;
  assert.ok(Object.isFrozen(first) && Object.isFrozen(first.Features.ArtifactsProxy.DomainWhitelist));
  assert.throws(() => {
    (first.HTTP as { Listen: string }).Listen = ':1';
  }, TypeError);
  const second = loadConfig({ file, explicit: true, env: { ...BASE_ENV, ARTIFACTS_PROXY_DOMAIN_WHITELIST: 'a.example' } }).config;
  assert.deepEqual(second.Features.ArtifactsProxy.DomainWhitelist, ['a.example']);
  assert.deepEqual(first.Features.ArtifactsProxy.DomainWhitelist, []);
  assert.notEqual(first.HTTPS, second.HTTPS);
});

test('unknown keys are warnings and are dropped from the config', () => {
  const file = fileWith(JSON.stringify({ HTTP: { Enabled: true, Listen: ':8080', Backlog: 5 }, FutureFeature: {} }));
  const loaded = loadConfig({ file, explicit: true, env: { UPSTREAM_SERVER_URL: 'https://x.example' } });
  assert.deepEqual(loaded.warnings, ['FutureFeature: unknown key, ignored', 'HTTP.Backlog: unknown key, ignored']);
  assert.equal('Backlog' in loaded.config.HTTP, false);
  assert.equal('FutureFeature' in loaded.config, false);
});

test('keys match case-insensitively as Go does, an exact spelling wins', () => {
  const file = fileWith('{"upstreamserver": {"url": "https://a.example"}, "HTTP": {"listen": ":1", "Listen": ":2", "ENABLED": true}}');
  const loaded = loadConfig({ file, explicit: true, env: {} });
  assert.equal(loaded.config.UpstreamServer.URL, 'https://a.example');
  assert.equal(loaded.config.HTTP.Listen, ':2');
  assert.equal(loaded.config.HTTP.Enabled, true);
  assert.deepEqual(loaded.warnings, ['HTTP.listen: unknown key, ignored']);
});

test('empty environment variables count as unset', () => {
  const file = fileWith(JSON.stringify({ HTTP: { Enabled: true, Listen: ':8080' } }));
  const loaded = loadConfig({ file, explicit: true, env: { UPSTREAM_SERVER_URL: 'https://x.example', HTTP_LISTEN: '', HTTP_ENABLED: '' } });
  assert.equal(loaded.config.HTTP.Listen, ':8080');
  assert.deepEqual(loaded.fromEnv, ['UPSTREAM_SERVER_URL']);
});

test('enabling the cache without the proxy is a warning', () => {
  const file = fileWith(JSON.stringify({ Features: { ArtifactsProxy: { ArtifactsCache: { Enabled: true } } } }));
  const loaded = loadConfig({ file, explicit: true, env: BASE_ENV });
  assert.deepEqual(loaded.warnings, [
    'Features.ArtifactsProxy.ArtifactsCache.Enabled: has no effect while Features.ArtifactsProxy.Enabled is false',
  ]);
});
