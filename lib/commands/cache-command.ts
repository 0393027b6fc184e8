import { parseArgs } from 'node:util';
import { cacheLayout, type CacheLayout } from '../cache/store/cache-layout';
import { evictEntry, listEntries, matchEntries, verifyEntry, type ListedEntry } from '../cache/store/cache-inventory';
import { removeEntry } from '../cache/store/evict-lru';
import { ConfigError, DEFAULT_CONFIG_PATH, loadConfig } from '../config/load-config';
import type { GatewayConfig } from '../config/types';
import { createDomainAllowlist } from '../artifacts/domain-allowlist';
import { createLogger, isLevel, LEVELS, redactUrl } from '../observe/log';
import { createUpstream } from '../proxy/upstream';
import { artifactTargets, LinkError, type PrewarmTarget } from './artifact-links';
import { runPrewarm } from './cache-prewarm';
import { formatBytes, lineView, terminalView } from './prewarm-progress';

// mender-gateway cache list|evict|verify|prewarm (docs/operations.md): the artifact cache of the
// configured path, from the disk alone, so each works beside a running gateway or without
// one. Exit status: 0 done, 1 something failed (verify: something was corrupt), 2 usage or
// configuration error. Errors are one line each on stderr.

const CONFIG_FLAG = `      --config FILE       Configuration JSON FILE (default "${DEFAULT_CONFIG_PATH}")`;
const HELP_FLAG = '  -h, --help              Show this help text.';

export const CACHE_USAGE = `Usage: mender-gateway cache <command> [flags]
Commands:
  list      List the cached artifacts (complete, filling or partial).
  evict     Remove artifacts from the cache.
  verify    Re-read every artifact and check its length and checksum.
  prewarm   Fill the cache with artifacts before devices ask for them.
Run "mender-gateway cache <command> --help" for a command's flags.
`;

export const LIST_USAGE = `Usage: mender-gateway cache list [flags]
Lists each artifact in the cache: its id, state (complete, filling, partial), size,
when a device last got it and how many times it was served from the cache.
Flags:
${CONFIG_FLAG}
      --json              One JSON array, for scripts.
${HELP_FLAG}
`;

export const EVICT_USAGE = `Usage: mender-gateway cache evict ARTIFACT... | --all [flags]
Removes artifacts from the cache; ARTIFACT is an artifact id, an origin host/path or an
entry id (or 8+ of its first characters) as "cache list" shows them. Devices downloading
one keep their copy; the next device fills it again. A fill running now is not touched.
Flags:
      --all               Remove every complete and partial artifact.
${CONFIG_FLAG}
${HELP_FLAG}
`;

export const VERIFY_USAGE = `Usage: mender-gateway cache verify [flags]
Re-reads every complete artifact and checks its length and MD5 against what was recorded
when it was cached; a corrupt one is removed and reported. Exit status 1 when any was.
Flags:
${CONFIG_FLAG}
${HELP_FLAG}
`;

export const PREWARM_USAGE = `Usage: mender-gateway cache prewarm URL... | --artifact ID... | --deployment ID... [flags]
Fills the cache before devices ask, from an artifact's download URL or, with the
management user of the configuration (Features.mTLS.MenderUsername, MenderPassword),
from the Mender server's artifact or deployment ids. Works while the gateway runs (its
devices follow this download) and while it is stopped. Ctrl-C keeps what arrived: run
the same command again to resume. Waits for ArtifactsCache.PrewarmWindow unless --now.
Flags:
      --artifact ID       An artifact id on the Mender server (repeatable).
      --deployment ID     Every artifact of a deployment (repeatable).
      --now               Do not wait for the prewarm window.
      --interval SECONDS  Seconds between progress lines when not on a terminal (default 5).
${CONFIG_FLAG}
      --log-level LEVEL   Log LEVEL of the fills, <${LEVELS.join('|')}> (default "warn")
${HELP_FLAG}
`;

const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

class UsageError extends Error {}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

function complain(line: string): void {
  process.stderr.write(`mender-gateway: ${line}\n`);
}

function loadCacheConfig(file: string | undefined): { config: Readonly<GatewayConfig>; layout: CacheLayout } {
  const { config } = loadConfig({ file, explicit: file !== undefined, env: process.env });
  const cache = config.Features.ArtifactsProxy.ArtifactsCache;
  if (!cache.Path) throw new UsageError('Features.ArtifactsProxy.ArtifactsCache.Path is empty: there is no cache to work on');
  return { config, layout: cacheLayout(cache.Path) };
}

export async function runCacheCommand(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const commands: Record<string, (args: string[]) => Promise<number>> = { list, evict, verify, prewarm };
  try {
    if (name === undefined || name === '-h' || name === '--help') {
      process.stdout.write(CACHE_USAGE);
      return name === undefined ? EXIT_USAGE : 0;
    }
    const command = commands[name];
    if (!command) throw new UsageError(`cache: unknown command ${JSON.stringify(name)} (list, evict, verify, prewarm)`);
    return await command(rest);
  } catch (err) {
    if (err instanceof ConfigError) {
      err.lines.forEach(complain);
      return EXIT_USAGE;
    }
    if (err instanceof UsageError || (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      complain(`${(err as Error).message} (see --help)`);
      return EXIT_USAGE;
    }
    if (err instanceof LinkError) {
      complain(err.message);
      return EXIT_FAILED;
    }
    complain(`cache ${name}: ${(err as Error).message}`);
    return EXIT_FAILED;
  }
}

async function list(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { config: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (values.help) return usage(LIST_USAGE);
  const { layout } = loadCacheConfig(values.config);
  const entries = await listEntries(layout);
  if (values.json) {
    say(JSON.stringify(entries.map((e) => ({ ...e, lastUsed: e.lastUsed?.toISOString() ?? null }))));
    return 0;
  }
  if (entries.length === 0) {
    say(`cache is empty (${layout.root})`);
    return 0;
  }
  const rows = entries.map((e) => [
    e.artifact,
    stateText(e),
    formatBytes(e.size),
    e.lastUsed ? e.lastUsed.toISOString().replace(/\.\d+Z$/, 'Z') : '-',
    String(e.hits),
    e.id.slice(0, 12),
  ]);
  printTable(['ARTIFACT', 'STATE', 'SIZE', 'LAST USED', 'HITS', 'ENTRY'], rows);
  const complete = entries.filter((e) => e.state === 'complete');
  say(
    `${complete.length} complete (${formatBytes(complete.reduce((n, e) => n + e.size, 0))}), ${entries.length - complete.length} filling or partial, in ${layout.root}`,
  );
  return 0;
}

function stateText(e: ListedEntry): string {
  if (e.state === 'complete') return 'complete';
  return `${e.state} ${e.size > 0 ? Math.floor((e.bytes * 100) / e.size) : 0}%`;
}

function printTable(head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [head, ...rows]) say(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
}

async function evict(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { config: { type: 'string' }, all: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
    allowPositionals: true,
  });
  if (values.help) return usage(EVICT_USAGE);
  if (!values.all && positionals.length === 0) throw new UsageError('cache evict: name an ARTIFACT or give --all');
  if (values.all && positionals.length > 0) throw new UsageError('cache evict: --all takes no ARTIFACT');
  const { layout } = loadCacheConfig(values.config);
  const entries = (await listEntries(layout)).filter((e) => e.state !== 'filling');
  const chosen = new Map<string, ListedEntry>();
  let missing = 0;
  if (values.all) for (const e of entries) chosen.set(`${e.id}/${e.state}`, e);
  for (const word of positionals) {
    const found = matchEntries(entries, word);
    if (found.length === 0) {
      complain(`cache evict: ${word}: not in the cache`);
      missing++;
    }
    for (const e of found) chosen.set(`${e.id}/${e.state}`, e);
  }
  for (const e of chosen.values()) {
    if (await evictEntry(layout, e)) say(`evicted ${e.artifact} (${e.state}, ${formatBytes(e.bytes)})`);
  }
  if (values.all) say(`${chosen.size} evicted`);
  return missing > 0 ? EXIT_FAILED : 0;
}

async function verify(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true });
  if (values.help) return usage(VERIFY_USAGE);
  const { layout } = loadCacheConfig(values.config);
  const entries = (await listEntries(layout)).filter((e) => e.state === 'complete');
  let corrupt = 0;
  for (const e of entries) {
    const verdict = await verifyEntry(layout, e.id);
    if (verdict.ok) {
      say(`ok       ${e.artifact} (${formatBytes(e.size)})`);
      continue;
    }
    corrupt++;
    await removeEntry(layout, e.id);
    say(`CORRUPT  ${e.artifact}: ${verdict.reason}; removed`);
  }
  say(`${entries.length} checked, ${corrupt} corrupt${corrupt > 0 ? ' and removed' : ''}`);
  return corrupt > 0 ? EXIT_FAILED : 0;
}

async function prewarm(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      config: { type: 'string' },
      artifact: { type: 'string', multiple: true },
      deployment: { type: 'string', multiple: true },
      now: { type: 'boolean' },
      interval: { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (values.help) return usage(PREWARM_USAGE);
  const artifacts = values.artifact ?? [];
  const deployments = values.deployment ?? [];
  if (positionals.length + artifacts.length + deployments.length === 0)
    throw new UsageError('cache prewarm: name a URL, an --artifact or a --deployment');
  const level = values['log-level'] ?? 'warn';
  if (!isLevel(level)) throw new UsageError(`invalid --log-level ${JSON.stringify(level)}: must be one of ${LEVELS.join(', ')}`);
  const interval = Number(values.interval ?? '5');
  if (!(interval > 0)) throw new UsageError(`--interval: expected seconds > 0, got ${JSON.stringify(values.interval)}`);
  const urls = positionals.map((u) => {
    try {
      const url = new URL(u);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error();
      return { label: redactUrl(url.href), url } satisfies PrewarmTarget;
    } catch {
      throw new UsageError(`cache prewarm: ${JSON.stringify(redactUrl(u))} is not an http(s) URL`);
    }
  });
  const { config } = loadCacheConfig(values.config);
  const proxy = config.Features.ArtifactsProxy;
  if (!proxy.ArtifactsCache.Enabled)
    throw new UsageError('cache prewarm: the artifact cache is off (Features.ArtifactsProxy.ArtifactsCache.Enabled)');
  const log = createLogger({ level, sink: process.stderr });
  const upstream = createUpstream(config.UpstreamServer);
  const interrupt = new AbortController();
  const onSignal = () => interrupt.abort();
  // `on`, not `once`: proper-lockfile's signal-exit re-raises a signal nobody else listens to.
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const targets = [
      ...urls,
      ...(artifacts.length + deployments.length > 0 ? await artifactTargets(config, upstream, log, { artifacts, deployments }) : []),
    ];
    // The same rule as for devices: only whitelisted origins are ever fetched.
    const allowlist = createDomainAllowlist(proxy.DomainWhitelist);
    const refused = targets.filter((t) => !allowlist.allows(t.url));
    for (const t of refused)
      complain(`cache prewarm: ${t.label}: ${t.url.host} is not in Features.ArtifactsProxy.DomainWhitelist; nothing fetched`);
    if (refused.length > 0) return EXIT_USAGE;
    const view = process.stdout.isTTY ? terminalView(process.stdout) : lineView(process.stdout, interval * 1000);
    let result: Awaited<ReturnType<typeof runPrewarm>>;
    try {
      result = await runPrewarm({
        cache: proxy.ArtifactsCache,
        targets,
        agentFor: (u) => upstream.originAgent(u),
        timeoutMs: upstream.timeoutMs,
        view,
        log,
        now: values.now === true,
        signal: interrupt.signal,
      });
    } finally {
      view.stop();
    }
    if (result === 'interrupted') {
      complain('cache prewarm: interrupted: what arrived is kept as partial files (never served); run the same command again to resume');
      return 130;
    }
    return result === 'done' ? 0 : EXIT_FAILED;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    upstream.close();
  }
}

function usage(text: string): number {
  process.stdout.write(text);
  return 0;
}
