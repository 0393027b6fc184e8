import { MultiBar, Presets, type SingleBar } from 'cli-progress';

// What `cache prewarm` shows while it fills: on a terminal a bar per artifact (cli-progress:
// bytes, rate, ETA, redrawn in place); elsewhere (a log, a pipe, systemd) one line per
// artifact every few seconds, which reads well in a journal.

export interface ProgressView {
  /** A fill has started (its length is known). */
  begin(label: string, size: number, already: number): void;
  update(label: string, written: number): void;
  /** One line that stays (a result or an error). */
  say(line: string): void;
  stop(): void;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const t = Math.round(s);
  if (t < 60) return `${t}s`;
  if (t < 3600) return `${Math.floor(t / 60)}m${String(t % 60).padStart(2, '0')}s`;
  return `${Math.floor(t / 3600)}h${String(Math.floor((t % 3600) / 60)).padStart(2, '0')}m`;
}

/** Bytes per second over the last few seconds of samples (what an ETA should follow). */
class RateMeter {
  private readonly samples: [number, number][] = [];
  add(at: number, written: number): void {
    this.samples.push([at, written]);
    while (this.samples.length > 2 && at - this.samples[0]![0] > 5_000) this.samples.shift();
  }
  rate(): number {
    if (this.samples.length < 2) return 0;
    const [t0, w0] = this.samples[0]!;
    const [t1, w1] = this.samples[this.samples.length - 1]!;
    return t1 > t0 ? ((w1 - w0) * 1000) / (t1 - t0) : 0;
  }
}

/** One artifact being filled: its bytes and rate; `rate` and `eta` as shown in both views. */
class Track {
  written: number;
  bar?: SingleBar;
  private readonly meter = new RateMeter();

  constructor(
    readonly size: number,
    already: number,
  ) {
    this.written = already;
    this.meter.add(performance.now(), already);
  }

  advance(written: number): void {
    this.written = written;
    this.meter.add(performance.now(), written);
  }

  rate(): string {
    return `${formatBytes(Math.round(this.meter.rate()))}/s`;
  }

  eta(): string {
    const rate = this.meter.rate();
    return rate > 0 ? formatSeconds((this.size - this.written) / rate) : '?';
  }
}

export function terminalView(stream: NodeJS.WriteStream): ProgressView {
  const multi = new MultiBar(
    {
      stream,
      format: ' {label} |{bar}| {percentage}% {done} of {size} {rate} ETA {etaText}',
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      fps: 5,
      barsize: 24,
    },
    Presets.shades_classic,
  );
  const tracks = new Map<string, Track>();
  const payload = (label: string, t: Track) => ({
    label,
    done: formatBytes(t.written),
    size: formatBytes(t.size),
    rate: t.rate(),
    etaText: t.eta(),
  });
  return {
    begin(label, size, already) {
      const t = new Track(size, already);
      t.bar = multi.create(Math.max(1, size), already, payload(label, t));
      tracks.set(label, t);
    },
    update(label, written) {
      const t = tracks.get(label);
      t?.advance(written);
      if (t) t.bar?.update(written, payload(label, t));
    },
    say(line) {
      // Above the bars once they are drawn (redrawn below it); plain before the first.
      if (tracks.size > 0) multi.log(`${line}\n`);
      else stream.write(`${line}\n`);
    },
    stop() {
      if (tracks.size > 0) multi.update(); // flushes lines said since the last redraw
      multi.stop();
    },
  };
}

export function lineView(stream: NodeJS.WritableStream, intervalMs: number): ProgressView {
  const tracks = new Map<string, Track>();
  const timer = setInterval(() => {
    for (const [label, t] of tracks) {
      if (t.written >= t.size) continue;
      const pct = t.size > 0 ? Math.floor((t.written * 100) / t.size) : 0;
      stream.write(`prewarm: ${label} ${formatBytes(t.written)} of ${formatBytes(t.size)} (${pct}%), ${t.rate()}, ETA ${t.eta()}\n`);
    }
  }, intervalMs);
  timer.unref();
  return {
    begin: (label, size, already) => void tracks.set(label, new Track(size, already)),
    update: (label, written) => tracks.get(label)?.advance(written),
    say: (line) => void stream.write(`${line}\n`),
    stop: () => clearInterval(timer),
  };
}
