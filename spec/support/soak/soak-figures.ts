import { execFileSync } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { heapAfterGc } from '../inspector-heap';
import { rssBytes } from '../process-stats';

// What a soak samples every few seconds, how it judges that a figure levels off, and how it is
// written down: a CSV per run and one SVG of it (gnuplot, Debian's gnuplot-nox).

export interface Sample {
  /** seconds since the start */
  t: number;
  identities: number;
  requests: number;
  /** the gateway's processes together */
  rssMb: number;
  /** V8 heap used after a full GC (the primary), MB; carried over between measurements */
  heapMb: number;
  fds: number;
  loopP99Ms: number;
  journalKb: number;
  cacheMb: number;
  series: number;
  statusKb: number;
  /** the driver's own RSS (emulator, S3 store, devices): not judged */
  driverMb: number;
  logLines: number;
  starts: number;
  /** seconds since the latest (re)start of a gateway */
  up: number;
}

export const COLUMNS: (keyof Sample)[] = [
  't',
  'identities',
  'requests',
  'rssMb',
  'heapMb',
  'fds',
  'loopP99Ms',
  'journalKb',
  'cacheMb',
  'series',
  'statusKb',
  'driverMb',
  'logLines',
  'starts',
  'up',
];

/**
 * The figures that must level off, with the slack beyond 10 % that a figure near zero needs
 * (a journal empty in the middle third and holding one outage's reports in the last is not growth).
 */
export const LEVELLING: { key: keyof Sample; label: string; slack: number; settled?: boolean; typical?: boolean }[] = [
  { key: 'rssMb', label: 'RSS MB', slack: 0 },
  { key: 'heapMb', label: 'V8 heap after GC MB', slack: 0 },
  { key: 'fds', label: 'open descriptors', slack: 16 },
  // A latency, not a store: the median of a third's samples (one busy moment of a box shared
  // with the devices and the server is no trend), judged once a process has run SETTLED seconds
  // (a start's own work is in its first interval's delay, and it is no steady state).
  { key: 'loopP99Ms', label: 'event-loop delay p99 ms (median of the third)', slack: 25, settled: true, typical: true },
  { key: 'journalKb', label: 'journal KB', slack: 1024 },
  { key: 'cacheMb', label: 'cache MB', slack: 1 },
  { key: 'series', label: 'metric series', slack: 20 },
  { key: 'statusKb', label: 'status JSON KB', slack: 2 },
];

export const SETTLED = 15;

export interface Levelling {
  label: string;
  middle: number;
  last: number;
  ok: boolean;
}

/** Per figure: the highest (or the median) of the middle third and of the last third; the last within 10 % (plus slack). */
export function levelling(samples: Sample[], seconds: number): Levelling[] {
  const third = seconds / 3;
  const middle = samples.filter((s) => s.t >= third && s.t < 2 * third);
  const last = samples.filter((s) => s.t >= 2 * third);
  const max = (rows: Sample[], key: keyof Sample) => rows.reduce((m, s) => Math.max(m, s[key]), 0);
  const median = (rows: Sample[], key: keyof Sample) => {
    const sorted = rows.map((s) => s[key]).sort((a, b) => a - b);
    return sorted.length ? sorted[Math.floor(sorted.length / 2)] : 0;
  };
  return LEVELLING.map(({ key, label, slack, settled, typical }) => {
    const judged = (rows: Sample[]) => (settled ? rows.filter((s) => s.up >= SETTLED) : rows);
    const m = (typical ? median : max)(judged(middle), key);
    const l = (typical ? median : max)(judged(last), key);
    return { label, middle: m, last: l, ok: middle.length > 0 && last.length > 0 && l <= m * 1.1 + slack };
  });
}

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { timeout: 10_000 }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve(text));
      })
      .on('timeout', function (this: http.ClientRequest) {
        this.destroy(new Error('timeout'));
      })
      .on('error', reject);
  });
}

/** Bytes under a folder (files only; a file removed while walking is skipped). */
export function folderBytes(dir: string): number {
  let total = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    try {
      const st = statSync(join(dir, name));
      total += st.isDirectory() ? folderBytes(join(dir, name)) : st.size;
    } catch {}
  }
  return total;
}

const openDescriptors = (pid: number): number => {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
};

export interface Probe {
  pids(): number[];
  admin: string;
  inspector(): string | undefined;
  journalDir: string;
  cacheDir: string;
}

/** The gateway's figures now (figures it cannot give while it restarts are 0). */
export async function probeGateway(
  p: Probe,
  withHeap: boolean,
): Promise<Pick<Sample, 'rssMb' | 'heapMb' | 'fds' | 'loopP99Ms' | 'series' | 'statusKb' | 'journalKb' | 'cacheMb'>> {
  const pids = p.pids();
  const mb = (b: number) => Math.round(b / 1e5) / 10;
  const out = {
    rssMb: mb(pids.reduce((sum, pid) => sum + rssBytes(pid), 0)),
    fds: pids.reduce((sum, pid) => sum + openDescriptors(pid), 0),
    journalKb: Math.round(folderBytes(p.journalDir) / 1024),
    cacheMb: mb(folderBytes(p.cacheDir)),
    heapMb: 0,
    loopP99Ms: 0,
    series: 0,
    statusKb: 0,
  };
  try {
    // Metrics first: the forced GC below would be in this interval's loop delay otherwise.
    const metrics = await get(`${p.admin}/metrics`);
    const lines = metrics.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    out.series = lines.length;
    const p99 = lines.find((l) => l.startsWith('nodejs_eventloop_lag_p99_seconds'));
    out.loopP99Ms = p99 ? Math.round(Number(p99.split(' ').at(-1)) * 1e4) / 10 : 0;
    out.statusKb = Math.round(Buffer.byteLength(await get(`${p.admin}/api/status`)) / 102.4) / 10;
    const inspector = p.inspector();
    if (withHeap && inspector) out.heapMb = mb(await heapAfterGc(inspector));
  } catch {}
  return out;
}

export function writeCsv(path: string, samples: Sample[]): void {
  writeFileSync(path, [COLUMNS.join(','), ...samples.map((s) => COLUMNS.map((c) => s[c]).join(','))].join('\n') + '\n');
}

/**
 * Six panels over time from the CSV, the plan's outages, kills and clock steps shaded or marked.
 * Returns false (and draws nothing) where gnuplot is missing.
 */
export function plotSvg(
  csv: string,
  svg: string,
  title: string,
  seconds: number,
  marks: { at: number; label: string }[],
  outages: [number, number][],
): boolean {
  const col = (c: keyof Sample) => COLUMNS.indexOf(c) + 1;
  const shade = outages.map(
    ([a, b], i) => `set object ${i + 1} rect from ${a},graph 0 to ${b},graph 1 fc rgb '#f4d6d6' fs solid 0.6 noborder behind`,
  );
  const arrows = marks.map((m, i) => `set arrow ${i + 1} from ${m.at},graph 0 to ${m.at},graph 1 nohead lc rgb '#888888' dt 2`);
  const panel = (ylabel: string, plots: string) => [`set ylabel '${ylabel}'`, `plot ${plots}`];
  const script = [
    `set terminal svg size 1100,1250 dynamic font 'sans,11' background '#ffffff'`,
    `set output '${svg}'`,
    `set datafile separator ','`,
    `set key top left opaque`,
    `set grid`,
    `set xrange [0:${seconds}]`,
    `set multiplot layout 6,1 title '${title.replace(/'/g, '')}'`,
    `set lmargin 12`,
    ...shade,
    ...arrows,
    `unset xlabel`,
    ...panel(
      'MB',
      `'${csv}' using ${col('t')}:${col('rssMb')} with lines lw 2 title 'gateway RSS', '' using ${col('t')}:${col('heapMb')} with steps title 'V8 heap after GC', '' using ${col('t')}:${col('driverMb')} with lines dt 3 title 'driver RSS (emulator, S3, devices)'`,
    ),
    ...panel(
      'count',
      `'${csv}' using ${col('t')}:${col('fds')} with lines title 'open descriptors', '' using ${col('t')}:${col('series')} with lines title 'metric series'`,
    ),
    ...panel('ms', `'${csv}' using ${col('t')}:${col('loopP99Ms')} with lines title 'event-loop delay p99'`),
    ...panel(
      'KB / MB',
      `'${csv}' using ${col('t')}:${col('journalKb')} with lines title 'journal KB', '' using ${col('t')}:${col('cacheMb')} with lines title 'cache MB', '' using ${col('t')}:${col('statusKb')} with lines title 'status JSON KB'`,
    ),
    ...panel(
      'thousands',
      `'${csv}' using ${col('t')}:(column(${col('identities')})/1000) with lines title 'identities seen', '' using ${col('t')}:(column(${col('requests')})/1000) with lines title 'device requests'`,
    ),
    `set xlabel 'seconds (shaded: uplink outages; dashed: kill -9, clock steps)'`,
    ...panel('thousands', `'${csv}' using ${col('t')}:(column(${col('logLines')})/1000) with lines title 'log lines (all levels)'`),
    `unset multiplot`,
  ].join('\n');
  try {
    execFileSync('gnuplot', [], { input: script, stdio: ['pipe', 'ignore', 'pipe'] });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
