// The validator generated at build time (ajv standalone code) judges every configuration as
// ajv compiling schema.json at start does: same verdict, same errors, same defaults filled in.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileWithAjv, validatorSource } from '../../lib/config/build-validator';
import type { ConfigValidator } from '../../lib/config/validate-config';
import { schemaDigest } from '../../lib/config/schema-digest';
import { VALUE_FORMATS } from '../../lib/config/value-formats';

/** The generated module, loaded from its text as Node would load the file. */
function generated(): { schemaDigest: string; makeValidator(formats: typeof VALUE_FORMATS): ConfigValidator } {
  const mod = { exports: {} as Record<string, unknown> };
  new Function('module', 'exports', 'require', validatorSource())(mod, mod.exports, require);
  return mod.exports as ReturnType<typeof generated>;
}

const cases: [string, unknown][] = [
  ['empty', {}],
  [
    'a full valid config',
    {
      UpstreamServer: { URL: 'https://hosted.mender.io' },
      HTTP: { Enabled: true, Listen: ':8080' },
      HTTPS: { Enabled: false },
      Features: { ArtifactsProxy: { Enabled: true, GatewayURL: 'https://gw.example', DomainWhitelist: ['s3.example'] } },
    },
  ],
  ['bad listen (format)', { HTTPS: { Listen: '443x' } }],
  ['bad URL (format)', { UpstreamServer: { URL: 'ftp://x' } }],
  ['bad base64 (format)', { Features: { ArtifactsProxy: { ArtifactsCache: { SignatureSecret: 'not base64!' } } } }],
  ['bad duration (format)', { ShutdownTimeout: '-3s' }],
  ['bad prewarm window (format)', { Features: { ArtifactsProxy: { ArtifactsCache: { PrewarmWindow: '25:00-06:00' } } } }],
  ['wrong types', { HTTP: { Enabled: 'yes', Listen: 80 }, Features: [] }],
  ['unknown keys', { Nope: 1, HTTP: { Also: true } }],
  ['empty whitelist entry (minLength)', { Features: { ArtifactsProxy: { DomainWhitelist: [''] } } }],
  ['negative worker count (minimum)', { Workers: -1 }],
  ['not an object', [1, 2]],
  ['bad log level (enum)', { LogLevel: 'loud' }],
];

test('the generated validator was made from this schema', () => {
  assert.equal(generated().schemaDigest, schemaDigest());
});

for (const [name, input] of cases) {
  test(`generated and compiled validators agree: ${name}`, () => {
    const compiled = compileWithAjv();
    const standalone = generated().makeValidator(VALUE_FORMATS);
    const [a, b] = [structuredClone(input), structuredClone(input)];
    const verdict = compiled(a);
    assert.equal(standalone(b), verdict);
    assert.deepEqual(standalone.errors ?? null, compiled.errors ?? null);
    assert.deepEqual(b, a, 'the same defaults filled in');
  });
}

test('the table covers both verdicts and every custom format', () => {
  const compiled = compileWithAjv();
  const verdicts = cases.map(([, input]) => compiled(structuredClone(input)));
  assert.ok(verdicts.includes(true) && verdicts.includes(false));
  const formats = new Set<string>();
  for (const [, input] of cases) {
    compiled(structuredClone(input));
    for (const e of compiled.errors ?? []) if (e.keyword === 'format') formats.add(String(e.params.format));
  }
  assert.deepEqual([...formats].sort(), Object.keys(VALUE_FORMATS).sort());
});
