import { randomBytes } from 'node:crypto';
import { promises as fsp, watch, type FSWatcher } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fillsDir, isThisHost, ownerTag, parseOwnedName, type CacheLayout } from '../store/cache-layout';
import { processAlive } from '../../server/process-liveness';
import type { Logger } from '../../observe/log';

// ArtifactsCache.FillRateLimit (ours): a metered uplink. The cap holds for the
// bytes every cache fill on this cache path takes from the origin together: all fills of this
// process, of its sibling workers, of a `cache prewarm` process, of another gateway on a
// shared path. No IPC: each running fill registers a file in <Path>/v1/fills/ whose mtime it
// refreshes; every process counts the live registrations (of live processes, refreshed
// lately) and gives each of its fills cap / count. A per-fill token bucket (a burst of
// ~100 ms) delays each chunk before it is written, so the write path's backpressure stops
// reading from the origin socket and followers still stream whatever has landed.

export interface UplinkCapOptions {
  layout: CacheLayout;
  /** The cap for all fills on the path together, bytes per second (> 0). */
  bytesPerSecond: number;
  log: Logger;
  /** How often registrations are refreshed and counted (default 500 ms). */
  refreshMs?: number;
  /** A registration not refreshed for this long is ignored and removed (default 3 s). */
  staleMs?: number;
  /** Bytes a fill may take at once after idling, as time at its rate (default 100 ms). */
  burstMs?: number;
  /** Clock, for tests (ms). */
  now?: () => number;
}

export interface FillShare {
  /** Wait until `bytes` may be taken from the origin (rejects when signal aborts). */
  take(bytes: number, signal?: AbortSignal): Promise<void>;
  /** This fill's current rate, bytes per second. */
  readonly rate: number;
  /** Stop counting this fill (idempotent). */
  close(): Promise<void>;
}

export class UplinkCap {
  readonly bytesPerSecond: number;
  private readonly refreshMs: number;
  private readonly staleMs: number;
  private readonly burstMs: number;
  private readonly now: () => number;
  private readonly dir: string;
  private readonly shares = new Set<Share>();
  private timer: NodeJS.Timeout | undefined;
  private watcher: FSWatcher | undefined;
  /** Live registrations of other processes (and of ours not yet seen) at the last count. */
  private others = 0;
  private ticking: Promise<void> | undefined;
  private again: Promise<void> | undefined;
  private warned = false;

  constructor(private readonly opts: UplinkCapOptions) {
    if (!(opts.bytesPerSecond > 0)) throw new TypeError(`expected a cap > 0 bytes per second, got ${opts.bytesPerSecond}`);
    this.bytesPerSecond = opts.bytesPerSecond;
    this.refreshMs = opts.refreshMs ?? 500;
    this.staleMs = opts.staleMs ?? 3_000;
    this.burstMs = opts.burstMs ?? 100;
    this.now = opts.now ?? Date.now;
    this.dir = fillsDir(opts.layout);
  }

  /** Fills sharing the cap right now, as this process counts them. */
  get fills(): number {
    return this.shares.size + this.others;
  }

  /** Each fill's rate: the cap divided among every live fill on the path. */
  shareRate(): number {
    return this.bytesPerSecond / Math.max(1, this.fills);
  }

  /** Count a new fill (registered on disk for the other processes); close() it when the fill ends. */
  async register(): Promise<FillShare> {
    const file = path.join(this.dir, `${ownerTag()}.${randomBytes(6).toString('hex')}`);
    const share = new Share(this, file, this.burstMs, this.now);
    this.shares.add(share);
    await this.touch(file);
    await this.tick(); // everyone's share shrinks now, not at the next tick
    if (!this.timer) {
      this.timer = setInterval(() => void this.tick(), this.refreshMs);
      this.timer.unref();
      // A fill joining or leaving in another process of this host (workers, a prewarm run) is
      // seen at once through inotify, not at the next count; a shared path on another host's
      // mount relies on the count alone.
      try {
        this.watcher = watch(this.dir, { persistent: false }, (event) => {
          if (event === 'rename') void this.tick();
        });
        this.watcher.on('error', () => this.unwatch());
      } catch {
        // no inotify (limits, filesystem): the periodic count still runs
      }
    }
    return share;
  }

  /** @internal */
  async unregister(share: Share): Promise<void> {
    if (!this.shares.delete(share)) return;
    if (this.shares.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
      this.unwatch();
      this.others = 0;
    }
    await fsp.rm(share.file, { force: true }).catch(() => undefined);
  }

  /** Refresh our registrations, count everyone's, and give each of our fills its rate. */
  tick(): Promise<void> {
    if (this.ticking) {
      // A count under way may have read the directory before the change: one more after it.
      this.again ??= this.ticking.then(() => {
        this.again = undefined;
        return this.tick();
      });
      return this.again;
    }
    this.ticking = this.count().finally(() => (this.ticking = undefined));
    return this.ticking;
  }

  private async count(): Promise<void> {
    const ours = new Set<string>();
    for (const s of this.shares) {
      ours.add(path.basename(s.file));
      await this.touch(s.file);
    }
    let others = 0;
    try {
      const now = Date.now();
      for (const name of await fsp.readdir(this.dir)) {
        if (ours.has(name)) continue;
        const file = path.join(this.dir, name);
        const owner = parseOwnedName(name);
        const stat = await fsp.stat(file).catch(() => null);
        if (!stat) continue;
        const dead = owner === null || (isThisHost(owner) && !processAlive(owner)) || now - stat.mtimeMs > this.staleMs;
        if (dead) await fsp.rm(file, { force: true }).catch(() => undefined);
        else others++;
      }
    } catch (err) {
      this.warn(err as Error);
    }
    this.others = others;
    const rate = this.shareRate();
    for (const s of this.shares) s.setRate(rate);
  }

  private unwatch(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }

  private async touch(file: string): Promise<void> {
    const t = new Date();
    try {
      await fsp.utimes(file, t, t);
    } catch {
      // First time, or removed by a process that thought us dead: make it (again).
      try {
        await fsp.mkdir(this.dir, { recursive: true });
        await fsp.writeFile(file, '');
      } catch (err) {
        this.warn(err as Error);
      }
    }
  }

  private warn(err: Error): void {
    if (this.warned) return;
    this.warned = true;
    this.opts.log.warn("uplink cap: cannot register fills in the cache directory; the cap is shared by this process's fills only", {
      dir: this.dir,
      cause: err.message,
    });
  }
}

/** One fill's token bucket. Tokens may go negative (a chunk larger than the burst): the debt is waited off. */
class Share implements FillShare {
  rate: number;
  private tokens: number;
  private last: number;
  private closed = false;

  constructor(
    private readonly cap: UplinkCap,
    readonly file: string,
    private readonly burstMs: number,
    private readonly now: () => number,
  ) {
    this.rate = cap.shareRate();
    this.tokens = 0; // no burst at the start: a fill joining others must not overshoot the cap
    this.last = now();
  }

  /** Set by the first take: the bucket fills from then, not from the registration (whose file
   * write may take tens of ms on a busy box, tokens a fresh fill would then spend at once). */
  private started = false;

  private burst(): number {
    return (this.rate * this.burstMs) / 1000;
  }

  private refill(): void {
    const t = this.now();
    if (!this.started) {
      this.last = t;
      return;
    }
    this.tokens = Math.min(this.burst(), this.tokens + (this.rate * Math.max(0, t - this.last)) / 1000);
    this.last = t;
  }

  /** @internal */
  setRate(rate: number): void {
    this.refill(); // tokens earned so far at the old rate
    this.rate = rate;
    this.tokens = Math.min(this.tokens, this.burst());
  }

  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    this.refill();
    this.started = true;
    this.tokens -= bytes;
    // Wait in slices no longer than the refresh period, so a rate that changes meanwhile
    // (fills joining or leaving) applies to the rest of the wait.
    while (this.tokens < 0 && !this.closed) {
      const ms = Math.min(500, Math.ceil((-this.tokens * 1000) / this.rate));
      await sleep(ms, undefined, { signal });
      this.refill();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.cap.unregister(this);
  }
}
