import { ConfigError, loadConfig } from '../config/load-config';
import type { GatewayConfig } from '../config/types';
import type { Level, Logger } from '../observe/log';

// SIGHUP: read the configuration again as at start (file, then environment). An
// invalid configuration changes nothing; a valid one hands its reloadable parts (certificate,
// key, mTLS files, log level, Metrics.StatusPageAllowRemote) to the running gateway. Everything else needs a restart, and the
// log says which sections changed.

export interface ReloadTarget {
  reload(next: Readonly<GatewayConfig>): void;
}

export interface ReloadOptions {
  file: string | undefined;
  explicit: boolean;
  env: NodeJS.ProcessEnv;
  /** --log-level, which wins over the file (as at start). */
  levelFlag: Level | undefined;
}

const RELOADABLE = new Set(['HTTPS', 'LogLevel', 'DebugLog']);

/** The log level a configuration asks for: --log-level, then LogLevel, then DebugLog. */
export function logLevelOf(config: Readonly<GatewayConfig>, levelFlag: Level | undefined): Level {
  if (levelFlag) return levelFlag;
  if (config.LogLevel) return config.LogLevel;
  return config.DebugLog ? 'debug' : 'info';
}

export function reloadConfig(
  current: Readonly<GatewayConfig>,
  target: ReloadTarget,
  opts: ReloadOptions,
  log: Logger,
): Readonly<GatewayConfig> {
  log.info('SIGHUP: reloading certificates, mTLS files and log level');
  let next: Readonly<GatewayConfig>;
  try {
    next = loadConfig({ file: opts.file, explicit: opts.explicit, env: opts.env }).config;
  } catch (err) {
    const lines = err instanceof ConfigError ? err.lines : [(err as Error).message];
    for (const line of lines) log.error('reload: configuration invalid, keeping the running one', { problem: line });
    return current;
  }
  const level = logLevelOf(next, opts.levelFlag);
  if (level !== log.level) {
    log.info('reload: log level changed', { from: log.level, to: level });
    log.setLevel(level);
  }
  let needRestart = Object.keys(next).filter(
    (k) =>
      !RELOADABLE.has(k) &&
      !sameJson(
        k === 'Features' ? withoutMtlsFiles(next) : next[k as keyof GatewayConfig],
        k === 'Features' ? withoutMtlsFiles(current) : current[k as keyof GatewayConfig],
      ),
  );
  // Who may read the status page applies at the next request: turning it off must not wait.
  const metricsShape = (c: Readonly<GatewayConfig>) => ({ ...c.Metrics, StatusPageAllowRemote: false });
  if (sameJson(metricsShape(next), metricsShape(current))) needRestart = needRestart.filter((k) => k !== 'Metrics');
  const httpsShape = (c: Readonly<GatewayConfig>) => ({ ...c.HTTPS, ServerCertificate: '', ServerKey: '' });
  if (!sameJson(httpsShape(next), httpsShape(current))) needRestart.push('HTTPS (other than ServerCertificate/ServerKey)');
  if (needRestart.length > 0)
    log.warn('reload: these settings changed but take effect only after a restart', { sections: needRestart.join(',') });
  target.reload(next);
  return next;
}

function withoutMtlsFiles(c: Readonly<GatewayConfig>): unknown {
  return { ...c.Features, mTLS: { ...c.Features.mTLS, CACertificate: '', BlacklistPath: '', CRLPath: '' } };
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
