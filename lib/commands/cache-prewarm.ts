import { setTimeout as sleep } from 'node:timers/promises';
import { createArtifactCache, type ArtifactCache } from '../cache/artifact-cache';
import type { ArtifactsCacheConfig } from '../config/types';
import { msUntilClose, msUntilOpen, parsePrewarmWindow } from '../config/prewarm-window';
import type { Logger } from '../observe/log';
import type { PrewarmTarget } from './artifact-links';
import { formatBytes, formatSeconds, type ProgressView } from './prewarm-progress';

// `cache prewarm`: the same fill a device's request starts (lib/cache), run from this process
// on the gateway's cache path. A running gateway's devices asking for the artifact meanwhile
// follow this fill through the fill lock, and this one follows a fill the gateway already
// runs: one origin download either way. Interrupted (Ctrl-C, the window closing), the fills
// keep their bytes as partial files that the next prewarm, or the next device, resumes.

export type PrewarmResult = 'done' | 'failed' | 'interrupted';

export interface PrewarmOptions {
  cache: ArtifactsCacheConfig;
  targets: PrewarmTarget[];
  agentFor: (url: URL) => import('node:http').Agent | undefined;
  /** UpstreamServer.Timeout: how long a fill waits for the origin's answer, as the gateway's own fills. */
  timeoutMs?: number;
  view: ProgressView;
  log: Logger;
  /** --now: ignore PrewarmWindow. */
  now: boolean;
  /** Aborted on SIGINT/SIGTERM. */
  signal: AbortSignal;
}

type One = 'cached' | 'failed' | 'stopped';

export async function runPrewarm(opts: PrewarmOptions): Promise<PrewarmResult> {
  const window = opts.now ? null : parsePrewarmWindow(opts.cache.PrewarmWindow ?? '');
  let pending = [...opts.targets];
  let failed = 0;
  while (pending.length > 0) {
    const wait = msUntilOpen(window);
    if (wait > 0) {
      opts.view.say(`prewarm: waiting for the prewarm window ${window!.text} (opens in ${formatSeconds(wait / 1000)}; --now ignores it)`);
      const opened = await sleep(wait, true, { signal: opts.signal }).catch(() => false);
      if (!opened) return 'interrupted';
    }
    const closes = new AbortController();
    const closeIn = msUntilClose(window);
    const timer = Number.isFinite(closeIn) ? setTimeout(() => closes.abort(), closeIn) : undefined;
    const stop = AbortSignal.any([opts.signal, closes.signal]);
    const cache = await createArtifactCache({ config: opts.cache, log: opts.log, agentFor: opts.agentFor, timeoutMs: opts.timeoutMs });
    let results: One[];
    try {
      results = await Promise.all(pending.map((t) => fillOne(cache, t, opts.view, stop)));
    } finally {
      clearTimeout(timer);
      await cache.close(); // stopped fills keep their partial files here
    }
    failed += results.filter((r) => r === 'failed').length;
    if (opts.signal.aborted) return 'interrupted';
    pending = pending.filter((_, i) => results[i] === 'stopped');
    if (pending.length > 0)
      opts.view.say(`prewarm: the prewarm window ${window!.text} closed: partial files kept, resuming when it opens again`);
  }
  return failed > 0 ? 'failed' : 'done';
}

async function fillOne(cache: ArtifactCache, t: PrewarmTarget, view: ProgressView, stop: AbortSignal): Promise<One> {
  const started = performance.now();
  const r = cache.fill(t.url);
  if ('published' in r) {
    view.say(`prewarm: ${t.label} already cached (${formatBytes(r.published.size)})`);
    return 'cached';
  }
  const p = r.progress;
  const stopped = new Promise<'stopped'>((resolve) => {
    if (stop.aborted) resolve('stopped');
    stop.addEventListener('abort', () => resolve('stopped'), { once: true });
  });
  const start = await Promise.race([p.started.catch((err: Error) => ({ kind: 'error' as const, err })), stopped]);
  if (start === 'stopped') return 'stopped';
  if (start.kind === 'error') {
    view.say(`prewarm: ${t.label} failed: ${start.err.message}`);
    return 'failed';
  }
  if (start.kind === 'published') {
    view.say(`prewarm: ${t.label} cached by another process meanwhile`);
    return 'cached';
  }
  if (start.kind === 'uncached') {
    view.say(`prewarm: ${t.label} cannot be cached: ${start.reason}`);
    return 'failed';
  }
  const already = p.written;
  view.begin(t.label, p.size, already);
  const onChange = () => view.update(t.label, p.written);
  p.on('change', onChange);
  try {
    while (p.state === 'growing' && !stop.aborted) await Promise.race([p.changed(), stopped]);
  } finally {
    p.off('change', onChange);
  }
  if (p.state === 'done') {
    const seconds = (performance.now() - started) / 1000;
    const fetched = p.size - already;
    const how = p.followed ? 'followed the fill of another process' : already > 0 ? `resumed at ${formatBytes(already)}` : 'downloaded';
    view.say(
      `prewarm: ${t.label} cached: ${formatBytes(p.size)}, ${how}, ${formatSeconds(seconds)} (${formatBytes(Math.round(fetched / Math.max(seconds, 0.001)))}/s)`,
    );
    return 'cached';
  }
  if (stop.aborted) return 'stopped';
  view.say(`prewarm: ${t.label} failed: ${p.error?.message ?? 'unknown error'}`);
  return 'failed';
}
