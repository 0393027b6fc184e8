import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv, { _, type ValidateFunction } from 'ajv';
import standaloneCode from 'ajv/dist/standalone';
import schema from './schema.json';
import { VALUE_FORMATS } from './value-formats';
import { schemaDigest } from './schema-digest';

// The configuration validator, made from schema.json by ajv. At build time (`make build`,
// `npm run build`: `node dist/lib/config/build-validator.js`) ajv writes it out as plain code,
// dist/lib/config/schema-validator.generated.js, so the gateway neither loads ajv (~8 MB of RSS) nor
// compiles the schema at every start. Not committed: it is build output, regenerated from the
// schema each build. lib/config/validate-config.ts falls back to compiling here when
// that file is missing or was made from another schema (a build by `tsc` alone).

export const GENERATED_FILE = 'schema-validator.generated.js';

/** Options differing from ajv's defaults only. useDefaults mutates: it runs on the loader's private copy. */
function configAjv(standalone: boolean): Ajv {
  // In the generated code a format is `formats.<name>`: the factory's argument, VALUE_FORMATS.
  const ajv = new Ajv({
    allErrors: true,
    useDefaults: true,
    allowUnionTypes: true,
    code: standalone ? { source: true, formats: _`formats` } : {},
  });
  for (const [name, format] of Object.entries(VALUE_FORMATS)) ajv.addFormat(name, { validate: format.validate });
  return ajv;
}

export function compileWithAjv(): ValidateFunction {
  return configAjv(false).compile(schema);
}

/** The module text: `module.exports = { schemaDigest, makeValidator(formats) }`. */
export function validatorSource(): string {
  const ajv = configAjv(true);
  const code = standaloneCode(ajv, ajv.compile(schema));
  return [
    '"use strict";',
    '// Generated at build time by dist/lib/config/build-validator.js from lib/config/schema.json (ajv standalone). Do not edit.',
    `exports.schemaDigest = ${JSON.stringify(schemaDigest())};`,
    'exports.makeValidator = function makeValidator(formats) {',
    '  const module = { exports: {} };',
    code,
    '  return module.exports;',
    '};',
    '',
  ].join('\n');
}

if (require.main === module) {
  const file = join(__dirname, GENERATED_FILE);
  writeFileSync(file, validatorSource());
  process.stdout.write(`wrote ${file}\n`);
}
