// One line per event, in logrus' text format (what operators of the commercial gateway
// already grep for in journalctl): time="…" level=info msg="…" key=value …
// Secrets never reach the output: fields with secret-looking names are masked, any
// URL-looking value loses its query string (presigned URLs and gateway links carry
// credentials there), and a signature or credential parameter is masked wherever it appears.
// What counts as secret is listed once, in config/secret-keys.ts.

import { SECRET_FIELD_WORDS, SECRET_QUERY_PARAMETERS } from '../config/secret-keys';

export const LEVELS = ['debug', 'info', 'warn', 'error', 'fatal'] as const;
export type Level = (typeof LEVELS)[number];

export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  fatal(msg: string, fields?: Fields): void;
  enabled(level: Level): boolean;
  setLevel(level: Level): void;
  readonly level: Level;
  child(fields: Fields): Logger;
}

export interface Sink {
  write(line: string): unknown;
}

const SECRET_KEY = new RegExp(SECRET_FIELD_WORDS.join('|'), 'i');
// `X-Amz-Signature=…` in a path without a scheme, `Credential=…, Signature=…` of a SigV4
// Authorization header: the value up to the next separator.
const SECRET_PARAMETER = new RegExp(`\\b(${SECRET_QUERY_PARAMETERS.join('|')}|Credential)=[^&,\\s"]+`, 'gi');

export function isLevel(value: string): value is Level {
  return (LEVELS as readonly string[]).includes(value);
}

/** Drop the query string (and userinfo) from anything that looks like a URL or a request path. */
export function redactUrl(value: string): string {
  let out = value.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/i, '$1');
  const q = out.indexOf('?');
  if (q >= 0) out = out.slice(0, q) + '?[redacted]';
  return out;
}

/** Mask a bearer token or other secret that slipped into free text. */
function redactText(value: string): string {
  return value
    .replace(/(bearer\s+)[A-Za-z0-9._~+/=-]+/gi, '$1[redacted]')
    .replace(/eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g, '[redacted-jwt]')
    .replace(/(https?:\/\/[^\s"?]*)\?[^\s"]*/gi, '$1?[redacted]')
    .replace(SECRET_PARAMETER, '$1=[redacted]');
}

function formatValue(key: string, value: unknown): string {
  let text: string;
  if (value instanceof Error) text = value.message;
  else if (typeof value === 'string') text = value;
  else if (value === undefined) text = '';
  else if (typeof value === 'object' && value !== null) text = JSON.stringify(value);
  else text = String(value);
  if (SECRET_KEY.test(key) && text !== '') text = '[redacted]';
  else text = redactText(text);
  return /^[A-Za-z0-9_.:/@+\-[\]]+$/.test(text) ? text : JSON.stringify(text);
}

export function formatLine(level: Level, msg: string, fields: Fields, now = new Date()): string {
  const parts = [
    `time=${JSON.stringify(now.toISOString())}`,
    `level=${level === 'warn' ? 'warning' : level}`,
    `msg=${JSON.stringify(redactText(msg))}`,
  ];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    parts.push(`${key}=${formatValue(key, value)}`);
  }
  return parts.join(' ') + '\n';
}

export function createLogger(options: { level?: Level; sink?: Sink; fields?: Fields } = {}): Logger {
  const state = { level: options.level ?? 'info' };
  const sink = options.sink ?? process.stderr;
  return makeLogger(state, sink, options.fields ?? {});
}

function makeLogger(state: { level: Level }, sink: Sink, base: Fields): Logger {
  const enabled = (level: Level) => LEVELS.indexOf(level) >= LEVELS.indexOf(state.level);
  const emit = (level: Level) => (msg: string, fields?: Fields) => {
    if (!enabled(level)) return;
    sink.write(formatLine(level, msg, fields ? { ...base, ...fields } : base));
  };
  return {
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    fatal: emit('fatal'),
    enabled,
    setLevel(level: Level) {
      state.level = level;
    },
    get level() {
      return state.level;
    },
    child(fields: Fields) {
      return makeLogger(state, sink, { ...base, ...fields });
    },
  };
}
