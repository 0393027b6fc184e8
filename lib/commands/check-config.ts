// mender-gateway check-config (docs/operations.md): load the configuration exactly as a start would,
// then check what a start would find too late (files, lists, cache directory, ports; with
// --online the upstream, the management login and the bucket). Every problem is printed at
// once, naming its key and where the value came from. Exit 0 when OK, 2 otherwise. It never
// talks to a running gateway and never prints a secret.

import { parseArgs } from 'node:util';
import { checkConfigFiles } from '../config/check-files';
import { checkCachePath, type CachePathResult } from './config-checks/check-cache-path';
import { exposureWarnings } from './config-checks/exposure-warnings';
import { expiryWarnings } from './config-checks/expiry-warnings';
import { checkListeners, type ListenerResult } from './config-checks/check-listeners';
import { checkLists } from './config-checks/check-lists';
import { ConfigError, DEFAULT_CONFIG_PATH, loadConfigKeepingGoing } from '../config/load-config';
import { runOnlineChecks, type OnlineResult } from './config-checks/online-checks';
import type { GatewayConfig, LoadedConfig } from '../config/types';
import { valueSources } from './config-checks/value-source';

export const CHECK_CONFIG_USAGE = `Usage: mender-gateway check-config [flags]   (also: mender-gateway -t [flags])
Check the configuration as a start would read it (file and environment), and what a start
finds only later: certificates and keys, CA bundle and CRL, whitelist entries, the cache
directory and its free space, listener ports. Never touches a running gateway.
Flags:
      --config FILE   Configuration JSON FILE (default "${DEFAULT_CONFIG_PATH}")
      --online        Also try the network: upstream over TLS, management login, S3 bucket
                      (each within 5 s)
      --json          Print the result as one JSON object
  -h, --help          Show this help text.
Exit status: 0 configuration OK, 2 any error.
`;

const EXIT_OK = 0;
const EXIT_ERROR = 2;

interface Problem {
  key: string;
  source: string;
  message: string;
}

function parseFlags(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      online: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  }).values;
}

/** "HTTPS.ServerKey: ..." → its key; lines that name a file or several keys have none. */
function keyOf(line: string): string | null {
  const m = /^([A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*|\[[0-9]+\])*): /.exec(line);
  return m ? m[1] : null;
}

function problemFrom(line: string, sourceOf: (key: string) => string): Problem {
  const key = keyOf(line);
  if (key === null) return { key: '', source: '', message: line };
  const message = line.slice(key.length + 2);
  // loadConfig already says "(from VAR)" for a value from the environment.
  const env = /\(from ([A-Z0-9_]+)\)$/.exec(message);
  if (env) return { key, source: `environment ${env[1]}`, message: message.slice(0, env.index).trimEnd() };
  return { key, source: sourceOf(key), message };
}

const problemLine = (p: Problem) =>
  p.key === '' ? p.message : `${p.key}: ${p.message} (${p.source === 'default' ? 'default value' : `from ${p.source}`})`;

interface Findings {
  problems: Problem[];
  listeners: ListenerResult[];
  cache: CachePathResult | null;
  notes: string[];
  /** Dates a start would warn about: certificates ending or ended, a CRL past its nextUpdate. */
  dates: string[];
  online: OnlineResult[];
}

async function findProblems(loaded: LoadedConfig, online: boolean): Promise<Findings> {
  const { config } = loaded;
  const sourceOf = valueSources(loaded);
  const lines = [...checkConfigFiles(config)];
  const lists = checkLists(config);
  lines.push(...lists.problems);
  const listeners = await checkListeners(config);
  for (const l of listeners) if (l.problem) lines.push(`${l.key}: ${l.listen}: ${l.problem}`);
  const proxy = config.Features.ArtifactsProxy;
  const cacheKey = 'Features.ArtifactsProxy.ArtifactsCache.Path';
  const cache = proxy.Enabled && proxy.ArtifactsCache.Enabled ? await checkCachePath(proxy.ArtifactsCache.Path) : null;
  if (cache && !cache.ok) lines.push(`${cacheKey}: ${cache.line}`);
  const results = online ? await runOnlineChecks(config, process.env) : [];
  for (const r of results) if (!r.ok) lines.push(`${r.key}: ${r.what}: ${r.line}`);
  return {
    problems: lines.map((l) => problemFrom(l, sourceOf)),
    listeners,
    cache,
    notes: lists.notes,
    dates: [...expiryWarnings(config), ...lists.warnings],
    online: results,
  };
}

/** A URL may carry user:password@; the summary never shows it. */
function withoutUserinfo(url: string): string {
  try {
    const u = new URL(url);
    if (u.username === '' && u.password === '') return url;
    u.username = '';
    u.password = '';
    return u.href;
  } catch {
    return url;
  }
}

function summary(loaded: LoadedConfig, f: Findings): string[] {
  const c: Readonly<GatewayConfig> = loaded.config;
  const proxy = c.Features.ArtifactsProxy;
  const mtls = c.Features.mTLS;
  const row = (name: string, text: string) => `  ${name.padEnd(12)} ${text}`;
  const out = [row('file', loaded.file ?? '(none: environment and defaults)')];
  out.push(row('environment', loaded.fromEnv.length > 0 ? loaded.fromEnv.join(', ') : '(no variables set)'));
  for (const l of f.listeners)
    out.push(row('listener', `${l.key} ${l.listen}${l.key === 'HTTPS.Listen' ? ` (TLS ${c.HTTPS.MinimumTLSVersion}+)` : ''}: free`));
  const trust = c.UpstreamServer.InsecureSkipVerify
    ? 'certificate NOT verified'
    : c.UpstreamServer.CACertificate
      ? `CA ${c.UpstreamServer.CACertificate}`
      : 'system CAs';
  out.push(row('upstream', `${withoutUserinfo(c.UpstreamServer.URL)} (${trust}, timeout ${c.UpstreamServer.Timeout})`));
  out.push(
    row(
      'proxy',
      proxy.Enabled
        ? `artifacts via ${withoutUserinfo(proxy.GatewayURL)}, whitelist ${proxy.DomainWhitelist.join(' ') || '(none)'}`
        : 'off',
    ),
  );
  const cache = proxy.ArtifactsCache;
  const cacheExtras = [
    cache.S3?.Enabled ? `S3 ${withoutUserinfo(cache.S3.Endpoint)} bucket ${cache.S3.Bucket}` : '',
    cache.FillRateLimit > 0 ? `fills capped at ${cache.FillRateLimit} bytes/s` : '',
    cache.PrewarmWindow ? `prewarm ${cache.PrewarmWindow} only` : '',
  ].filter(Boolean);
  out.push(row('cache', f.cache ? [f.cache.line, ...cacheExtras].join(', ') : 'off'));
  const extra = [mtls.BlacklistPath && 'blocklist', mtls.CRLPath && 'CRL'].filter(Boolean).join(', ');
  out.push(
    row(
      'mTLS',
      mtls.Enabled
        ? `CA ${mtls.CACertificate}, user ${mtls.MenderUsername}${extra ? `, ${extra}` : ''}${f.notes.length ? ` (${f.notes.join('; ')})` : ''}`
        : 'off',
    ),
  );
  for (const r of f.online) out.push(row('online', `${r.what}: ${r.line}`));
  return out;
}

export async function runCheckConfig(argv: string[]): Promise<number> {
  let flags: ReturnType<typeof parseFlags>;
  try {
    flags = parseFlags(argv);
  } catch (err) {
    process.stderr.write(`mender-gateway check-config: ${(err as Error).message} (see --help)\n`);
    return EXIT_ERROR;
  }
  if (flags.help) {
    process.stdout.write(CHECK_CONFIG_USAGE);
    return EXIT_OK;
  }
  const file = flags.config ?? DEFAULT_CONFIG_PATH;
  let read: ReturnType<typeof loadConfigKeepingGoing>;
  try {
    read = loadConfigKeepingGoing({ file: flags.config, explicit: flags.config !== undefined, env: process.env });
  } catch (err) {
    // An unreadable file or one that is not JSON: nothing further can be checked.
    if (!(err instanceof ConfigError)) throw err;
    return report(
      flags.json === true,
      err.lines.map((l) => problemFrom(l, valueSources({ file, fromEnv: [] }))),
      [],
      null,
    );
  }
  // The loader's lines already say "(from VAR)" for environment values; the rest come from the file.
  const loaderProblems = read.errors.map((l) => problemFrom(l, valueSources({ file, fromEnv: read.loaded?.fromEnv ?? [] })));
  if (read.loaded === null) return report(flags.json === true, loaderProblems, [], null);
  // Invalid values were replaced by their defaults, so the deeper checks still run: every problem at once.
  // The network is tried only with a valid configuration: a repaired one may lack the very URL.
  const findings = await findProblems(read.loaded, flags.online === true && loaderProblems.length === 0);
  const problems = [...loaderProblems, ...findings.problems];
  return report(
    flags.json === true,
    problems,
    [...read.loaded.warnings, ...exposureWarnings(read.loaded.config), ...trustWarnings(read.loaded.config), ...findings.dates],
    problems.length === 0 ? summary(read.loaded, findings) : null,
    read.loaded,
    findings,
  );
}

/** Settings that work but leave a door open: said here, where the operator reviews the set-up. */
function trustWarnings(c: Readonly<GatewayConfig>): string[] {
  const out: string[] = [];
  if (c.Features.mTLS.Enabled && c.Features.mTLS.IdentityAttribute === '') {
    out.push(
      "Features.mTLS.IdentityAttribute: empty, so a device with any valid certificate may claim another device's id_data; name the id_data attribute its certificate holds (docs/mtls.md)",
    );
  }
  return out;
}

function report(
  json: boolean,
  problems: Problem[],
  warnings: string[],
  lines: string[] | null,
  loaded?: LoadedConfig,
  findings?: Findings,
): number {
  const ok = problems.length === 0;
  if (json) {
    const body = {
      ok,
      file: loaded?.file ?? null,
      fromEnv: loaded?.fromEnv ?? [],
      errors: problems,
      warnings,
      listeners: findings?.listeners ?? [],
      cache: findings?.cache ?? null,
      online: findings?.online ?? [],
    };
    process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    return ok ? EXIT_OK : EXIT_ERROR;
  }
  for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
  if (ok) {
    process.stdout.write(`configuration OK\n${(lines ?? []).join('\n')}\n`);
    return EXIT_OK;
  }
  for (const p of problems) process.stderr.write(`error: ${problemLine(p)}\n`);
  process.stderr.write(`configuration has ${problems.length} error${problems.length === 1 ? '' : 's'}\n`);
  return EXIT_ERROR;
}
