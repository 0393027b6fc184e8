// ajv's errors → one line each, naming the key path and the value received, in the manner of
// Node's validators: `HTTPS.Listen: must be host:port (…), got "443x"`. Secrets are never echoed.

import type { ErrorObject } from 'ajv';
import { isSecretConfigKey } from './secret-keys';
import { VALUE_FORMATS } from './value-formats';

/** "/Features/DeviceSystem/DefaultInventory/0/Name" → ["Features","DeviceSystem","DefaultInventory","0","Name"] */
export function pointerSegments(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** ["Features","DeviceSystem","DefaultInventory","0","Name"] → "Features.DeviceSystem.DefaultInventory[0].Name" */
export function keyPath(segments: readonly string[]): string {
  let out = '';
  for (const s of segments) {
    if (/^[0-9]+$/.test(s)) out += `[${s}]`;
    else out += out === '' ? s : `.${s}`;
  }
  return out === '' ? '(configuration)' : out;
}

function valueAt(data: unknown, segments: readonly string[]): unknown {
  let node = data;
  for (const s of segments) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string, unknown>)[s];
  }
  return node;
}

/** `segments`: the key path of the value, so a secret's value is never shown. */
export function showValue(value: unknown, segments?: readonly string[]): string {
  if (value === undefined) return 'nothing';
  if (segments !== undefined && isSecretConfigKey(segments)) {
    return typeof value === 'string' ? `[redacted, ${value.length} characters]` : '[redacted]';
  }
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  integer: 'an integer',
  boolean: 'a boolean (true or false)',
  object: 'an object',
  array: 'a list',
  null: 'null',
};

function typeText(type: string | string[]): string {
  const names = (Array.isArray(type) ? type : [type]).map((t) => TYPE_NAMES[t] ?? t);
  return names.length === 1 ? names[0] : `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`;
}

export interface Described {
  kind: 'error' | 'warning';
  line: string;
  /** For unknown keys: where the key sits, so the loader can drop it. */
  segments: string[];
}

/** `source` maps "HTTPS.Listen" to the environment variable that set it, if any. */
export function describeConfigError(err: ErrorObject, data: unknown, source: ReadonlyMap<string, string>): Described {
  let segments = pointerSegments(err.instancePath);
  const params = err.params as Record<string, unknown>;
  if (err.keyword === 'additionalProperties') {
    segments = [...segments, String(params.additionalProperty)];
    return { kind: 'warning', line: `${keyPath(segments)}: unknown key, ignored`, segments };
  }
  if (err.keyword === 'required') segments = [...segments, String(params.missingProperty)];
  const value = valueAt(data, segments);
  let rule: string;
  switch (err.keyword) {
    case 'type':
      rule = `must be ${typeText(params.type as string | string[])}`;
      break;
    case 'format':
      rule = VALUE_FORMATS[String(params.format)]?.message ?? `must be in format ${String(params.format)}`;
      break;
    case 'enum':
      rule = `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
      break;
    case 'required':
      rule = 'required';
      break;
    case 'minLength':
      rule = 'must not be empty';
      break;
    case 'minimum':
      rule = `must be ${String(params.comparison)} ${String(params.limit)}`;
      break;
    default:
      rule = err.message ?? err.keyword;
  }
  const envName = source.get(segments.join('.'));
  const from = envName ? ` (from ${envName})` : '';
  return { kind: 'error', line: `${keyPath(segments)}: ${rule}, got ${showValue(value, segments)}${from}`, segments };
}
