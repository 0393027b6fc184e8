// Where a key's value came from, for check-config's error lines: the environment variable
// that set it, the configuration file, or the built-in default.

import { readFileSync } from 'node:fs';
import { ENV_OVERRIDES } from '../../config/env-overrides';
import type { LoadedConfig } from '../../config/types';

export type SourceOf = (key: string) => string;

/** The raw file as written (loadConfig already proved it parses), or null. */
function readRaw(file: string | null): unknown {
  if (file === null) return null;
  try {
    const text = readFileSync(file, 'utf8');
    return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch {
    return null;
  }
}

/** Key names are matched without case, as loadConfig does (match-key-case.ts). */
function inFile(raw: unknown, segments: string[]): boolean {
  let node = raw;
  for (const s of segments) {
    if (typeof node !== 'object' || node === null || Array.isArray(node)) return false;
    const found = Object.keys(node).find((k) => k.toLowerCase() === s.toLowerCase());
    if (found === undefined) return false;
    node = (node as Record<string, unknown>)[found];
  }
  return true;
}

export function valueSources(loaded: Pick<LoadedConfig, 'file' | 'fromEnv'>): SourceOf {
  const raw = readRaw(loaded.file);
  return (key) => {
    const path = key.replace(/\[[0-9]+\]$/, '');
    const row = ENV_OVERRIDES.find((r) => r.path.join('.') === path && loaded.fromEnv.includes(r.env));
    if (row) return `environment ${row.env}`;
    if (loaded.file !== null && inFile(raw, path.split('.'))) return `file ${loaded.file}`;
    return 'default';
  };
}
