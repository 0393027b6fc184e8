import cluster, { type Worker } from 'node:cluster';
import type { Logger, Sink } from '../observe/log';
import { SEMI_SPACE_FLAG, semiSpaceChosen } from './young-generation';

// The cluster primary: forks N workers that each run the whole gateway; cluster
// shares their listeners (each worker accepts its own connections, below). A worker that dies
// after it was serving is replaced; SIGTERM/SIGINT drain every worker (each finishes its requests in flight, as a
// single process would). SIGHUP is passed to every worker, which reloads in place as a
// single process does (certificate, key, mTLS files, log level; open connections,
// WebSockets included, go on). SIGUSR2 replaces the workers one at a time, each new one
// serving before the old one is told to stop, so no request is refused and the new workers
// read the whole configuration afresh; a replacement that cannot start leaves the old one
// serving. The primary serves no device itself; what else it does for its workers (the report
// journal's one writer) comes in as a WorkerService, wired by the CLI, so this layer knows no
// feature.

/** Messages between primary and worker (over cluster's IPC channel). */
export type WorkerMessage = { type: 'ready' } | { type: 'shutdown' };

/** Something the primary does for its workers besides running them. */
export interface WorkerService {
  /** A worker's message: true when it was this service's (the primary's own are not). */
  handle(worker: Worker, message: unknown): boolean;
  /** After the last worker exited: what they answered is final. */
  close(): Promise<void>;
}

export interface PrimaryOptions {
  count: number;
  log: Logger;
  /** How long a draining worker may take before it is killed (ShutdownTimeout plus a margin). */
  drainMs: number;
  service?: WorkerService;
  /** Monotonic ms, for how long a worker lived (tests pass their own). */
  clock?: () => number;
}

/**
 * A worker that dies faster than this after starting is not restarted again and again. Counted
 * on the monotonic clock: a wall clock stepped back would make every death look quick, one stepped
 * forward a crash loop look slow.
 */
const CRASH_WINDOW_MS = 5_000;
const MAX_QUICK_CRASHES = 5;

export function runPrimary(opts: PrimaryOptions): Promise<number> {
  const { log } = opts;
  const clock = opts.clock ?? (() => performance.now());
  const serving = new Set<Worker>();
  const retiring = new Set<Worker>();
  /** Forked, not serving yet: stopped by a signal, their exit status does not count. */
  const starting = new Set<Worker>();
  const reloadWhenReady = new Set<Worker>();
  let stopping = false;
  let rolling: Promise<void> | null = null;
  let rollAgain = false;
  let quickCrashes = 0;
  let resolveExit!: (code: number) => void;
  const exited = new Promise<number>((resolve) => (resolveExit = resolve));
  let exitCode = 0;

  function fork(replacement = false): Promise<Worker> {
    const worker = cluster.fork();
    starting.add(worker);
    const startedAt = clock();
    const ready = new Promise<Worker>((resolve, reject) => {
      worker.on('message', (m: WorkerMessage) => {
        if (opts.service?.handle(worker, m)) return;
        if (m?.type !== 'ready') return;
        starting.delete(worker);
        serving.add(worker);
        // A SIGHUP that came while it started may postdate the files it read: reload now.
        if (reloadWhenReady.delete(worker)) worker.process.kill('SIGHUP');
        resolve(worker);
      });
      worker.once('exit', (code, signal) => {
        const wasServing = serving.delete(worker);
        const wasStarting = starting.delete(worker);
        reloadWhenReady.delete(worker);
        const planned = retiring.delete(worker) || stopping;
        reject(new Error(`worker ${worker.process.pid} exited (${signal ?? code}) before serving`));
        if (planned) {
          if (code !== 0 && !wasStarting) exitCode = 1;
          return maybeDone();
        }
        if (!wasServing && replacement) return; // rollingRestart reports it and keeps the old one
        if (!wasServing && serving.size > 0) {
          // The files changed since the first worker read them (an edit in progress): the
          // workers already serving go on; SIGUSR2 once the files are right starts the rest.
          log.error('worker failed to start: serving with the workers already running', {
            pid: worker.process.pid,
            code,
            signal,
            workers: serving.size,
          });
          return;
        }
        if (!wasServing) {
          // A worker that cannot start (port in use, bad file) fails the same way every time.
          log.error('worker failed to start: stopping', { pid: worker.process.pid, code, signal });
          exitCode = 1;
          return void stopAll();
        }
        quickCrashes = clock() - startedAt < CRASH_WINDOW_MS ? quickCrashes + 1 : 0;
        if (quickCrashes >= MAX_QUICK_CRASHES) {
          log.error('workers keep dying right after start: stopping', { crashes: quickCrashes });
          exitCode = 1;
          return void stopAll();
        }
        log.warn('worker died: starting a replacement', { pid: worker.process.pid, code, signal });
        fork().catch(() => undefined);
      });
    });
    ready.catch(() => undefined);
    return ready;
  }

  function retire(worker: Worker): Promise<void> {
    serving.delete(worker);
    retiring.add(worker);
    const gone = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    if (worker.isConnected()) worker.send({ type: 'shutdown' } satisfies WorkerMessage);
    else worker.process.kill('SIGTERM');
    const timer = setTimeout(() => {
      log.warn('worker did not finish in time: killing it', { pid: worker.process.pid });
      worker.process.kill('SIGKILL');
    }, opts.drainMs);
    return gone.finally(() => clearTimeout(timer));
  }

  async function rollingRestart(): Promise<void> {
    do {
      rollAgain = false;
      log.info('SIGUSR2: replacing workers one at a time', { workers: serving.size });
      for (const old of [...serving]) {
        if (stopping) return;
        try {
          await fork(true);
        } catch (err) {
          log.error('replacement worker did not start: keeping the old one', { err: (err as Error).message });
          return;
        }
        await retire(old);
      }
      // Workers that could not start earlier (files being edited) are started now.
      while (serving.size < opts.count && !stopping) {
        try {
          await fork(true);
        } catch (err) {
          log.error('missing worker did not start', { err: (err as Error).message });
          break;
        }
      }
      log.info('SIGUSR2: workers replaced', { workers: serving.size });
    } while (rollAgain && !stopping);
  }

  async function stopAll(signal?: NodeJS.Signals): Promise<void> {
    if (stopping) return;
    stopping = true;
    log.info('stopping workers: finishing requests in flight', { signal: signal ?? 'none', workers: serving.size });
    const all = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
    await Promise.all(
      all.map((w) => {
        if (serving.has(w)) return retire(w);
        // Still starting (its handlers may not be in place yet): a signal, not a message.
        if (starting.has(w)) w.process.kill('SIGTERM');
        return new Promise((r) => (w.isDead() ? r(undefined) : w.once('exit', r)));
      }),
    );
    maybeDone();
  }

  let closing = false;
  function maybeDone(): void {
    if (closing || !stopping || Object.keys(cluster.workers ?? {}).length > 0) return;
    closing = true;
    // The service closes after the last worker: every report a worker answered is on disk.
    void (opts.service?.close() ?? Promise.resolve())
      .catch((err: unknown) => log.error('closing the service for the workers failed', { err: err as Error }))
      .then(() => resolveExit(exitCode));
  }

  let signals = 0;
  const onStop = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      log.warn('second signal: killing workers and exiting at once', { signal });
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    void stopAll(signal);
  };
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  process.on('SIGHUP', () => {
    log.info('SIGHUP: passed to every worker', { workers: serving.size, starting: starting.size });
    for (const w of serving) w.process.kill('SIGHUP');
    // Not before it serves: its handler may not be installed yet, and SIGHUP's default kills.
    for (const w of starting) reloadWhenReady.add(w);
  });
  process.on('SIGUSR2', () => {
    if (stopping) return;
    if (rolling) {
      rollAgain = true;
      return;
    }
    rolling = rollingRestart().finally(() => (rolling = null));
  });
  cluster.on('exit', () => setImmediate(maybeDone));

  // Each worker accepts its own connections from the shared listener (the kernel picks), not the
  // primary accepting every one and passing it over IPC (Node's round-robin default on Linux):
  // measured with 10,000 TLS WebSockets and 2 workers (bench-connections), server CPU per
  // connection set up 2.22 → 1.54 ms, setup 278 → 447/s, poll p99 39 → 25 ms, workers within 2 %
  // of each other; pass-through req/s unchanged. NODE_CLUSTER_SCHED_POLICY=rr still chooses RR.
  if (!process.env.NODE_CLUSTER_SCHED_POLICY) cluster.schedulingPolicy = cluster.SCHED_NONE;
  cluster.setupPrimary({ execArgv: workerExecArgv(process.execArgv, process.env.NODE_OPTIONS) });
  // One worker first: a start failure (port in use, bad key) is then reported once, not N times.
  log.info('starting worker processes', { workers: opts.count });
  fork().then(
    () => {
      if (!stopping) for (let i = 1; i < opts.count; i++) fork().catch(() => undefined);
    },
    () => undefined,
  );
  return exited;
}

/** The node flags a worker starts with: the primary's own, plus a small young generation. */
export function workerExecArgv(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  return semiSpaceChosen(execArgv, nodeOptions) ? [...execArgv] : [SEMI_SPACE_FLAG, ...execArgv];
}

/** A worker's log lines end with `worker=N` (appended, so the fields of each line keep their order). */
export function workerSink(id: number, out: Sink = process.stderr): Sink {
  return { write: (line: string) => out.write(line.endsWith('\n') ? `${line.slice(0, -1)} worker=${id}\n` : line) };
}
