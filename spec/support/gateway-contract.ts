import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv';
import { REPO_ROOT } from './gateway-process';

// The project's own contract of the Mender messages the gateway handles
// (spec/contracts/gateway/messages.schema.json), validated with ajv in strict mode. Tests assert
// both sides with it: what the emulator answers and what the gateway sends on; Mender's OpenAPI
// file is the extra cross-check where it is present (spec-validator.ts).

export type MessageName =
  | 'auth-request'
  | 'device-jwt'
  | 'deployment-instructions'
  | 'next-v2-request'
  | 'inventory-attributes'
  | 'deployment-status'
  | 'deployment-log'
  | 'preauthorize-request'
  | 'devauth-device'
  | 'artifact-link'
  | 'deployment'
  | 'error';

export const CONTRACT_FILE = join(REPO_ROOT, 'spec', 'contracts', 'gateway', 'messages.schema.json');

export class GatewayContract {
  private readonly ajv = new Ajv({
    strict: true,
    allErrors: true,
    formats: { 'date-time': (v: string) => !Number.isNaN(Date.parse(v)) && /^\d{4}-\d\d-\d\dT/.test(v) },
  });
  private readonly validators = new Map<string, ValidateFunction>();
  readonly names: MessageName[];

  constructor(file = CONTRACT_FILE) {
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { $id: string; definitions: Record<string, unknown> };
    this.ajv.addSchema(doc);
    this.names = Object.keys(doc.definitions) as MessageName[];
    for (const name of this.names) this.validators.set(name, this.ajv.getSchema(`${doc.$id}#/definitions/${name}`)!);
  }

  /** null when `body` is a valid `name`, else ajv's reasons. */
  problems(name: MessageName, body: unknown): string | null {
    const validate = this.validators.get(name);
    if (!validate) throw new Error(`contract: no message ${name}`);
    return validate(body) ? null : this.ajv.errorsText(validate.errors);
  }

  assert(name: MessageName, body: unknown): void {
    const problems = this.problems(name, body);
    if (problems) throw new Error(`contract: ${name} does not match: ${problems}\n${JSON.stringify(body)}`);
  }
}
