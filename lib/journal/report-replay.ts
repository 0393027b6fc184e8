import type { Logger } from '../observe/log';
import type { Upstream } from '../proxy/upstream';
import { BoundedMap } from '../state/bounded-map';
import type { JournalEntry, ReportResult } from './journal-file';
import { type KnownTokens, bearerToken, tokenHash } from './known-tokens';
import type { ReportJournal } from './report-journal';
import { callUpstream, UNREACHABLE_STATUSES } from './upstream-call';

// Sends journaled reports upstream again, per device in order, with the device's own token.
// Every request of a device (live or replay) runs under that device's lock, so a live report
// never overtakes one still waiting. The replay of the oldest waiting report is the probe: while
// upstream is unreachable the next probe waits 0.5 s, doubling up to 15 s. A 401 first tries the
// newest token the device presented, and only one known good for that same device (upstream
// accepted or issued it, known-tokens.ts); with none, the device waits for one (its next request
// brings it) and its reports end as 'unauthorized' at MaxAge. A report journaled before tokens
// were checked (no `trusted` mark) never borrows a newer token: refused, it ends at once.

// Waits (the probe's backoff, a device deferred, the timer) are on the monotonic clock: a wall
// clock stepped back a day must not stop the replay for a day. A report's age (MaxAge) is its
// wall-clock `at`, which survives a restart.
const elapsed = (): number => performance.now();

// What an upstream answer (or the lack of one) means for a device report. Pure, table-tested.
// "unreachable" is exactly what gets journaled on the live path and retried on replay:
// no connection, no answer in time, or a proxy/load balancer saying the server is not there.

export type Outcome =
  | { kind: 'unreachable' }
  /** upstream answered, but not for this report yet (a 5xx other than 502/503/504): keep it, retry later */
  | { kind: 'deferred' }
  | { kind: 'unauthorized' }
  | { kind: 'final'; result: Exclude<ReportResult, 'unauthorized' | 'expired' | 'superseded'> };

/** status: the upstream response status, or undefined when the request failed (refused, reset, timeout). */
export function outcomeOf(status: number | undefined): Outcome {
  if (status === undefined || UNREACHABLE_STATUSES.has(status)) return { kind: 'unreachable' };
  if (status >= 200 && status < 300) return { kind: 'final', result: 'delivered' };
  if (status === 401) return { kind: 'unauthorized' };
  if (status === 409) return { kind: 'final', result: 'aborted' };
  // Another 5xx may pass: keep the report (MaxAge bounds it) rather than drop it on a hiccup.
  // Upstream did answer, so it is not down: one device's report that upstream keeps failing
  // must not stall every other device's replay (nor mark the uplink down).
  if (status >= 500) return { kind: 'deferred' };
  return { kind: 'final', result: 'rejected' };
}

const MIN_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 15_000;
/** devices replayed at once */
const CONCURRENCY = 8;
/** A device whose report upstream answered with another 5xx waits this long, doubling, before the next try. */
const MIN_DEFER_MS = 5_000;
const MAX_DEFER_MS = 300_000;

/**
 * Devices whose newest token is kept (~1 KB each, a token: ~4.5 MB at the cap). Fewer than the
 * journal's devices: a device whose token went waits for its next request, which brings it again.
 */
export const LATEST_AUTH_DEVICES = 4_096;

export type FlushResult = 'empty' | 'unreachable' | 'blocked' | 'deferred';

// What the replay keeps of a device lives while the device has reports waiting (forget() at the
// end of each), so at most the journal's maxDevices and at most MaxAge (the journal ends every
// report by then). The caps and ages below make that explicit. `blocked` and `deferred` hold
// as many devices as the journal may: a device dropped from either would be replayable again at
// once, re-entered, and would push out the next one, round after round.
export class ReportReplay {
  /** Transient: a device's entry goes when its last request settles. */
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly latestAuth: BoundedMap<string, string>;
  /** device → the token upstream refused, while no newer one is known */
  private readonly blocked: BoundedMap<string, string>;
  /** device → when its oldest report may be tried again, and the wait that led there */
  private readonly deferred: BoundedMap<string, { until: number; waitMs: number }>;
  private down = false;
  private backoffMs = 0;
  private nextProbeAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private running = false;
  private closed = false;

  constructor(
    private readonly journal: ReportJournal,
    private readonly upstream: Upstream,
    private readonly log: Logger,
    private readonly known: KnownTokens,
  ) {
    const maxAgeMs = journal.maxAgeMs;
    this.latestAuth = new BoundedMap({ maxEntries: LATEST_AUTH_DEVICES, maxAgeMs });
    this.blocked = new BoundedMap({ maxEntries: journal.maxDevices, maxAgeMs });
    this.deferred = new BoundedMap({ maxEntries: journal.maxDevices, maxAgeMs });
  }

  /** Entries kept per map, past their age dropped first (tests, bench/state-sizes.ts). */
  stateSizes(): { locks: number; latestAuth: number; blocked: number; deferred: number } {
    for (const map of [this.latestAuth, this.blocked, this.deferred]) map.prune();
    return { locks: this.locks.size, latestAuth: this.latestAuth.size, blocked: this.blocked.size, deferred: this.deferred.size };
  }

  /** Run fn with the device's lock held (requests of one device, one at a time, in order). */
  withDevice<T>(device: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(device) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(device, tail);
    void tail.then(() => {
      if (this.locks.get(device) === tail) this.locks.delete(device);
    });
    return run;
  }

  /** Upstream failed recently: skip trying it until the next probe is due. */
  get skipUpstream(): boolean {
    return this.down && elapsed() < this.nextProbeAt;
  }

  get upstreamDown(): boolean {
    return this.down;
  }

  /**
   * The device presented this token; only a token known good for this very device counts, and
   * only while the device has reports waiting (the map holds no token of a device it owes nothing).
   */
  noteAuthorization(device: string, authorization: string | undefined): void {
    if (!authorization || this.journal.pendingOf(device).length === 0 || this.known.deviceOf(authorization) !== device) return;
    this.latestAuth.set(device, authorization);
    const refused = this.blocked.peek(device);
    if (refused !== undefined && refused !== authorization) {
      this.blocked.delete(device);
      this.wake();
    }
  }

  /** A device call went through: an answer below 500 means upstream is back. */
  noteUpstreamAnswer(status: number): void {
    if (this.down && status > 0 && status < 500) this.markUp();
  }

  markDown(): void {
    if (!this.down) this.log.warn('upstream unreachable: device reports go to the journal');
    this.down = true;
    this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs ? this.backoffMs * 2 : MIN_BACKOFF_MS);
    this.nextProbeAt = elapsed() + this.backoffMs;
    this.schedule(this.backoffMs);
  }

  markUp(): void {
    if (this.down) this.log.info('upstream answers again: replaying journaled reports', { queued: this.journal.stats.queued });
    this.down = false;
    this.backoffMs = 0;
    if (this.journal.stats.queued > 0) this.wake();
  }

  wake(): void {
    this.schedule(0);
  }

  /** Replay the device's waiting reports in order (the caller holds the device's lock). */
  async flush(device: string): Promise<FlushResult> {
    for (;;) {
      const entry = this.journal.pendingOf(device)[0];
      if (!entry) {
        this.forget(device);
        return 'empty';
      }
      if (this.blocked.has(device)) return 'blocked';
      if ((this.deferred.peek(device)?.until ?? 0) > elapsed()) return 'deferred';
      const result = await this.deliver(entry);
      if (result !== 'empty') return result;
    }
  }

  private async deliver(entry: JournalEntry): Promise<FlushResult> {
    const tried = new Set<string>();
    for (;;) {
      // Another token than the report's own only for a report journaled under a known-good
      // token, and only one still known good for the same device.
      const latest = this.latestAuth.peek(entry.device);
      const newer = entry.trusted && this.known.deviceOf(latest) === entry.device ? latest : undefined;
      const authorization = tried.size === 0 ? entry.headers.authorization : newer;
      if (authorization === undefined || tried.has(authorization)) {
        this.blocked.set(entry.device, [...tried].pop() ?? '');
        return 'blocked';
      }
      tried.add(authorization);
      const status = await this.attempt(entry, authorization);
      const outcome = outcomeOf(status);
      if (outcome.kind === 'unreachable') {
        this.markDown();
        return 'unreachable';
      }
      if (this.down) this.markUp();
      if (outcome.kind === 'deferred') {
        const waitMs = Math.min(MAX_DEFER_MS, (this.deferred.peek(entry.device)?.waitMs ?? MIN_DEFER_MS / 2) * 2);
        this.deferred.set(entry.device, { until: elapsed() + waitMs, waitMs });
        this.log.warn('report replay: upstream answered an error, the report is kept and tried again later', {
          device: entry.device,
          status,
          retry_in_ms: waitMs,
        });
        this.schedule(waitMs);
        return 'deferred';
      }
      this.deferred.delete(entry.device);
      if (outcome.kind === 'unauthorized') {
        const token = bearerToken(authorization);
        if (token !== undefined) this.known.apply({ t: 'refused', hash: tokenHash(token) });
        // A report journaled before tokens were checked (no `trusted` mark) may not borrow the
        // device's newer token: refused with its own, it ends now rather than hold the device's
        // later reports and its `next` until MaxAge.
        if (!entry.trusted) {
          await this.journal.finish(entry, 'unauthorized', status);
          return 'empty';
        }
        continue;
      }
      await this.journal.finish(entry, outcome.result, status);
      return 'empty';
    }
  }

  private async attempt(entry: JournalEntry, authorization: string | undefined): Promise<number | undefined> {
    const headers = { ...entry.headers };
    if (authorization !== undefined) headers.authorization = authorization;
    try {
      const res = await callUpstream(this.upstream, { method: entry.method, path: entry.path, headers, body: entry.body });
      res.resume();
      return res.statusCode;
    } catch (err) {
      this.log.debug('report replay failed', { err: (err as NodeJS.ErrnoException).code ?? (err as Error).message });
      return undefined;
    }
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    const at = elapsed() + ms;
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      void this.pass();
    }, ms);
  }

  private async pass(): Promise<void> {
    if (this.running || this.closed) return;
    this.running = true;
    try {
      await this.journal.expire(Date.now(), (device) => (this.blocked.has(device) ? 'unauthorized' : 'expired'));
      for (const map of [this.latestAuth, this.blocked, this.deferred]) {
        map.prune();
        for (const device of map.keys()) if (this.journal.pendingOf(device).length === 0) this.forget(device);
      }
      if (this.skipUpstream) return this.schedule(this.nextProbeAt - elapsed());
      const devices = this.journal.devices().filter((d) => this.replayable(d));
      let unreachable = false;
      const worker = async (): Promise<void> => {
        for (let device = devices.shift(); device !== undefined && !unreachable && !this.closed; device = devices.shift()) {
          if ((await this.withDevice(device, () => this.flush(device))) === 'unreachable') unreachable = true;
        }
      };
      // The first device alone is the probe; the rest go in parallel once it got through.
      const first = devices.shift();
      if (first !== undefined && (await this.withDevice(first, () => this.flush(first))) === 'unreachable') unreachable = true;
      if (!unreachable && devices.length > 0) await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    } catch (err) {
      this.log.error('report replay pass failed', { err: err as Error });
      this.schedule(MAX_BACKOFF_MS);
    } finally {
      this.running = false;
    }
    // Reports that arrived during the pass, or devices still waiting for a token (expiry).
    if (!this.down && this.journal.devices().some((d) => this.replayable(d))) this.wake();
    else if (this.journal.stats.queued > 0) this.schedule(this.down ? Math.max(0, this.nextProbeAt - elapsed()) : this.nextDeferred());
  }

  /** A device with nothing waiting: nothing of it is kept. */
  private forget(device: string): void {
    this.latestAuth.delete(device);
    this.blocked.delete(device);
    this.deferred.delete(device);
  }

  /** Not waiting for a token, nor for its deferred report's next try. */
  private replayable(device: string): boolean {
    return !this.blocked.has(device) && (this.deferred.peek(device)?.until ?? 0) <= elapsed();
  }

  /** When the first deferred device may be tried again (at most a minute: expiry runs in each pass). */
  private nextDeferred(): number {
    let next = 60_000;
    for (const [device, { until }] of this.deferred.entries()) {
      if (this.journal.pendingOf(device).length === 0) this.deferred.delete(device);
      else next = Math.min(next, Math.max(0, until - elapsed()));
    }
    return next;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
