// Read mender-gateway.conf → overlay the environment → validate against schema.json (ajv's code,
// generated at build time or compiled once; allErrors) → apply defaults on a private copy →
// deep-freeze. Every problem is reported at once, one line each; unknown keys are warnings, so
// configs written for newer products still start.

import { readFileSync } from 'node:fs';
import schema from './schema.json';
import { applyEnvOverrides } from './env-overrides';
import { describeConfigError } from './describe-config-error';
import { describeJsonSyntaxError } from './json-syntax-error';
import { matchKeyCase } from './match-key-case';
import { checkRequiredKeys } from './check-required-keys';
import { configValidator } from './validate-config';
import type { GatewayConfig, LoadedConfig } from './types';

export const DEFAULT_CONFIG_PATH = '/etc/mender/mender-gateway.conf';

export class ConfigError extends Error {
  readonly lines: string[];
  constructor(lines: string[]) {
    super(lines.join('\n'));
    this.name = 'ConfigError';
    this.lines = lines;
  }
}

export interface LoadConfigOptions {
  /** Defaults to DEFAULT_CONFIG_PATH. */
  file?: string;
  /** true when the file was named by --config: then a missing file is an error. */
  explicit: boolean;
  env: NodeJS.ProcessEnv;
}

const READ_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'is a directory, not a file',
  ENOTDIR: 'a parent is not a directory',
};

function readConfigText(path: string, explicit: boolean): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (code === 'ENOENT' && !explicit) return null;
    throw new ConfigError([`${path}: cannot read configuration file: ${READ_ERRORS[code] ?? (err as Error).message}`]);
  }
}

function parseConfigText(path: string, text: string): unknown {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text; // editors on Windows add a BOM
  try {
    return JSON.parse(body);
  } catch (err) {
    throw new ConfigError([`${path}: ${describeJsonSyntaxError(body, err as Error)}`]);
  }
}

function removeAt(data: unknown, segments: readonly string[]): void {
  let node = data as Record<string, unknown>;
  for (const s of segments.slice(0, -1)) {
    node = node?.[s] as Record<string, unknown>;
    if (typeof node !== 'object' || node === null) return;
  }
  delete node[segments[segments.length - 1]];
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

export function loadConfig(options: LoadConfigOptions): LoadedConfig {
  const { loaded, errors } = readConfig(options, false);
  if (errors.length > 0 || loaded === null) throw new ConfigError(errors);
  return loaded;
}

/**
 * For `check-config`: every loader error, and the configuration with each invalid value
 * replaced by its default, so the deeper checks (files, ports, cache) still run and all
 * problems are reported at once. `loaded` is null when even that does not validate.
 */
export function loadConfigKeepingGoing(options: LoadConfigOptions): { loaded: LoadedConfig | null; errors: string[] } {
  return readConfig(options, true);
}

function readConfig(options: LoadConfigOptions, keepGoing: boolean): { loaded: LoadedConfig | null; errors: string[] } {
  const path = options.file ?? DEFAULT_CONFIG_PATH;
  const text = readConfigText(path, options.explicit);
  // A freshly parsed object is private to this call; nothing shared is ever mutated.
  const data = text === null ? {} : parseConfigText(path, text);
  matchKeyCase(data, schema);

  const errors: string[] = [];
  const warnings: string[] = [];
  const invalid: string[][] = [];
  let overlay = { applied: [] as string[], source: new Map<string, string>() };
  if (typeof data === 'object' && data !== null && !Array.isArray(data)) {
    const result = applyEnvOverrides(data as Record<string, unknown>, options.env);
    errors.push(...result.errors);
    warnings.push(...result.warnings);
    overlay = result;
  }

  const validate = configValidator();
  if (!validate(data)) {
    for (const err of validate.errors ?? []) {
      const described = describeConfigError(err, data, overlay.source);
      if (described.kind === 'warning') {
        warnings.push(described.line);
        removeAt(data, described.segments);
      } else {
        errors.push(described.line);
        invalid.push(described.segments);
      }
    }
  }
  // Before any repair below: a value removed there must not read as missing.
  const isObject = typeof data === 'object' && data !== null && !Array.isArray(data);
  if (isObject) {
    const findings = checkRequiredKeys(data as GatewayConfig);
    errors.push(...findings.errors);
    warnings.push(...findings.warnings);
  }
  // Keeping going: the invalid values go, so the schema's defaults take their place.
  let valid = errors.length === 0;
  if (keepGoing && !valid && typeof data === 'object' && data !== null && !Array.isArray(data)) {
    for (const segments of invalid) removeAt(data, segments);
    valid = validate(data) as boolean;
  }
  const loaded =
    valid && isObject
      ? { config: deepFreeze(data as GatewayConfig), file: text === null ? null : path, warnings, fromEnv: overlay.applied }
      : null;
  return { loaded, errors: [...new Set(errors)] };
}
