import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv';
import { parse } from 'yaml';

// Validates response bodies against Mender's own bundled OpenAPI file
// (spec/contracts/mender/openapi3/dist/openapi.yaml, all $refs internal). The document is added to
// ajv whole, and each response schema is compiled by its JSON pointer, so internal $refs resolve.
// strict is off because OpenAPI schemas carry `example`, `nullable` and formats ajv does not know.

// The copy kept in the project (spec/contracts/mender/README.md), so a bare clone runs the contract tests.
export const MENDER_SPECS_DIR = process.env.MENDER_SPECS_DIR ?? resolve(__dirname, '../../../spec/contracts/mender');

type Json = Record<string, unknown>;

function pointer(...segments: string[]): string {
  return '#/' + segments.map((s) => encodeURIComponent(s.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/');
}

export class MenderSpec {
  private readonly doc: Json;
  private readonly ajv = new Ajv({ strict: false, validateSchema: false, validateFormats: false, allErrors: true });
  private readonly compiled = new Map<string, ValidateFunction>();

  /** The spec, or null (said once on stderr) where the file is not there: it is a cross-check only. */
  static ifPresent(file = join(MENDER_SPECS_DIR, 'openapi3/dist/openapi.yaml')): MenderSpec | null {
    if (existsSync(file)) return new MenderSpec(file);
    process.stderr.write(`Mender OpenAPI file not found (${file}): responses checked against the project's own contract only\n`);
    return null;
  }

  constructor(file = join(MENDER_SPECS_DIR, 'openapi3/dist/openapi.yaml')) {
    this.doc = parse(readFileSync(file, 'utf8')) as Json;
    this.ajv.addSchema(this.doc, 'mender');
  }

  /** Throws unless `body` matches the schema the spec gives for this response (it must document one). */
  assertResponse(method: string, pathTemplate: string, status: number, body: unknown): void {
    const key = `${method.toLowerCase()} ${pathTemplate} ${status}`;
    let validate = this.compiled.get(key);
    if (!validate) {
      validate = this.ajv.getSchema('mender' + this.schemaPointer(method.toLowerCase(), pathTemplate, String(status)));
      if (!validate) throw new Error(`spec: cannot compile the schema of ${key}`);
      this.compiled.set(key, validate);
    }
    if (!validate(body))
      throw new Error(`spec: ${key} body does not match: ${this.ajv.errorsText(validate.errors)}\n${JSON.stringify(body)}`);
  }

  /** Throws unless `body` matches components/schemas/<name> (e.g. 'Error'). */
  assertSchema(name: string, body: unknown): void {
    const key = `schema ${name}`;
    let validate = this.compiled.get(key);
    if (!validate) {
      validate = this.ajv.getSchema('mender' + pointer('components', 'schemas', name));
      if (!validate) throw new Error(`spec: no schema ${name}`);
      this.compiled.set(key, validate);
    }
    if (!validate(body))
      throw new Error(`spec: body does not match ${name}: ${this.ajv.errorsText(validate.errors)}\n${JSON.stringify(body)}`);
  }

  /** Whether the spec documents a JSON body for this response. */
  documentsBody(method: string, pathTemplate: string, status: number): boolean {
    try {
      this.schemaPointer(method.toLowerCase(), pathTemplate, String(status));
      return true;
    } catch {
      return false;
    }
  }

  /** Pointer to the JSON schema of a documented response, following a components/responses $ref. */
  private schemaPointer(method: string, path: string, status: string): string {
    const paths = this.doc.paths as Record<string, Record<string, { responses?: Record<string, Json> }>>;
    const response = paths[path]?.[method]?.responses?.[status];
    if (!response) throw new Error(`spec: no documented ${status} response for ${method.toUpperCase()} ${path}`);
    let segments = ['paths', path, method, 'responses', status];
    let target: Json = response;
    if (typeof target.$ref === 'string') {
      segments = target.$ref
        .replace(/^#\//, '')
        .split('/')
        .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
      target = segments.reduce<Json>((node, s) => node[s] as Json, this.doc);
    }
    const content = target.content as Record<string, Json> | undefined;
    const mediaType = content && Object.keys(content).find((t) => t.startsWith('application/json'));
    if (!mediaType) throw new Error(`spec: ${method.toUpperCase()} ${path} ${status} has no JSON body schema`);
    return pointer(...segments, 'content', mediaType, 'schema');
  }
}
