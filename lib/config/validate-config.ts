import type { ErrorObject } from 'ajv';
import { VALUE_FORMATS } from './value-formats';
import { schemaDigest } from './schema-digest';

// The schema.json validator the loader runs: the one generated at build time
// (lib/config/build-validator.ts) when it is there and made from this very schema; otherwise
// ajv, loaded and compiled now (a build by `tsc` alone, as in development and the test suite).
// Both give the same errors: the generated code is ajv's own, with the same options and formats.

export interface ConfigValidator {
  (data: unknown): boolean;
  errors?: ErrorObject[] | null;
}

interface GeneratedModule {
  schemaDigest: string;
  makeValidator(formats: typeof VALUE_FORMATS): ConfigValidator;
}

let chosen: ConfigValidator | undefined;

function choose(): ConfigValidator {
  let generated: GeneratedModule | undefined;
  try {
    generated = require('./schema-validator.generated') as GeneratedModule;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
  }
  if (generated?.schemaDigest === schemaDigest()) return generated.makeValidator(VALUE_FORMATS);
  // Required here only: build-validator loads ajv, which the generated file spares.
  const build = require('./build-validator') as typeof import('./build-validator');
  return build.compileWithAjv();
}

/** The validator, chosen and made once per process. */
export function configValidator(): ConfigValidator {
  chosen ??= choose();
  return chosen;
}
