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
 * The figures that must level off, with the slack beyond 10 % that a figure near zero needs.
 * A figure not measured in a sample is NaN there (the heap is measured every few samples; a probe
 * that failed measures nothing): it is left out, and a third with fewer than MIN_READINGS real
 * readings of a figure fails the figure rather than passing on nothing.
 */
export const LEVELLING: { key: keyof Sample; label: string; slack: number; settled?: boolean; typical?: boolean; atRest?: boolean }[] = [
  { key: 'rssMb', label: 'RSS MB', slack: 0 },
  { key: 'heapMb', label: 'V8 heap after GC MB', slack: 0 },
  { key: 'fds', label: 'open descriptors', slack: 16 },
  // A latency, not a store: the median of a third's samples (one busy moment of a box shared
  // with the devices and the server is no trend), judged once a process has run SETTLED seconds
  // (a start's own work is in its first interval's delay, and it is no steady state).
  { key: 'loopP99Ms', label: 'event-loop delay p99 ms (median of the third)', slack: 25, settled: true, typical: true },
  // The journal holds what an outage brought, more or less by chance of its timing: judged at
  // rest (no outage, and a while after one for the replay), where it must come back to the same.
  { key: 'journalKb', label: 'journal KB at rest', slack: 64, atRest: true },
  { key: 'series', label: 'metric series', slack: 20 },
  { key: 'statusKb', label: 'status JSON KB', slack: 2 },
];

export const SETTLED = 15;
export const MIN_READINGS = 3;

export interface Levelling {
  label: string;
  middle: number;
  last: number;
  ok: boolean;
  /** Real readings in the middle and the last third. */
  readings: [number, number];
}

/**
 * Per figure: the highest (or the median) of the middle third and of the last third; the last
 * within 10 % (plus slack). `atRest(t)` says whether the journal is at rest at `t`.
 */
export function levelling(samples: Sample[], seconds: number, atRest: (t: number) => boolean = () => true): Levelling[] {
  const third = seconds / 3;
  const middle = samples.filter((s) => s.t >= third && s.t < 2 * third);
  const last = samples.filter((s) => s.t >= 2 * third);
  const max = (values: number[]) => values.reduce((m, v) => Math.max(m, v), 0);
  const median = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted.length ? sorted[Math.floor(sorted.length / 2)] : 0;
  };
  return LEVELLING.map(({ key, label, slack, settled, typical, atRest: restOnly }) => {
    const values = (rows: Sample[]) =>
      rows
        .filter((s) => (!settled || s.up >= SETTLED) && (!restOnly || atRest(s.t)))
        .map((s) => s[key])
        .filter((v) => !Number.isNaN(v));
    const [vm, vl] = [values(middle), values(last)];
    const pick = typical ? median : max;
    const [m, l] = [pick(vm), pick(vl)];
    const ok = vm.length >= MIN_READINGS && vl.length >= MIN_READINGS && l <= m * 1.1 + slack;
    return { label, middle: m, last: l, ok, readings: [vm.length, vl.length] };
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
): Promise<
  Pick<Sample, 'rssMb' | 'heapMb' | 'fds' | 'loopP99Ms' | 'series' | 'statusKb' | 'journalKb' | 'cacheMb'> & {
    evictions: number;
    failed: string[];
  }
> {
  const pids = p.pids();
  const mb = (b: number) => Math.round(b / 1e5) / 10;
  const failed: string[] = [];
  const out = {
    rssMb: pids.length ? mb(pids.reduce((sum, pid) => sum + rssBytes(pid), 0)) : Number.NaN,
    fds: pids.length ? pids.reduce((sum, pid) => sum + openDescriptors(pid), 0) : Number.NaN,
    journalKb: Math.round(folderBytes(p.journalDir) / 1024),
    cacheMb: mb(folderBytes(p.cacheDir)),
    heapMb: Number.NaN,
    loopP99Ms: Number.NaN,
    series: Number.NaN,
    statusKb: Number.NaN,
    evictions: Number.NaN,
    failed,
  };
  // Each figure on its own: one that cannot be read is NaN (and named), never a 0 that levels off.
  try {
    // Metrics first: the forced GC below would be in this interval's loop delay otherwise.
    const lines = (await get(`${p.admin}/metrics`)).split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    out.series = lines.length;
    const value = (name: string) => {
      const line = lines.find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
      return line ? Number(line.split(' ').at(-1)) : Number.NaN;
    };
    out.loopP99Ms = Math.round(value('nodejs_eventloop_lag_p99_seconds') * 1e4) / 10;
    out.evictions = value('mender_gateway_cache_evictions_total');
  } catch {
    failed.push('metrics');
  }
  try {
    out.statusKb = Math.round(Buffer.byteLength(await get(`${p.admin}/api/status`)) / 102.4) / 10;
  } catch {
    failed.push('status');
  }
  const inspector = p.inspector();
  if (withHeap && inspector) {
    try {
      out.heapMb = mb(await heapAfterGc(inspector));
    } catch {
      failed.push('heap');
    }
  }
  return out;
}

/** NaN (not measured) is an empty field: gnuplot leaves it out. */
export function writeCsv(path: string, samples: Sample[]): void {
  const cell = (v: number) => (Number.isNaN(v) ? '' : String(v));
  writeFileSync(path, [COLUMNS.join(','), ...samples.map((s) => COLUMNS.map((c) => cell(s[c])).join(','))].join('\n') + '\n');
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
