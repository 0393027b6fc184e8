import type { DeviceFleet } from '../load/device-fleet';
import type { CertPair } from '../../spec/support/tls-material';
import type { GatewaySetup, GatewayUnderTest } from './gateway-under-test';
import type { NginxProcess } from '../nginx/nginx-process';
import type { OriginHandle } from './origin';
import { alternate, describe, summarize, type Samples, type Side, type Summary } from './rounds';
import type { Runtime } from './runtimes';

// What every case of the nginx comparison gets: both servers, the origin, the knobs, and a
// place to put its verdict against the target.

export interface Verdict {
  name: string;
  gateway: string;
  nginx: string;
  ratio: string;
  target: string;
  /** null: no target, figure printed for comparison only. */
  met: boolean | null;
  /** Load average range and highest steal over the case's rounds (a loaded box shows here). */
  system?: string;
  /** The same figure from the gateway on the previous runtime (Node 20) and its ratio: a column of the summary. */
  previous?: string;
}

export interface BenchContext {
  dir: string;
  origin: OriginHandle;
  gateway: GatewayUnderTest;
  nginx: NginxProcess;
  nginxBinary: string;
  nginxPorts: { http: number; https: number; mtls: number; mtlsResume: number; pass: number };
  /** The mTLS case's devices, when that case runs. */
  fleet?: DeviceFleet;
  setup: GatewaySetup;
  tls: { ca: CertPair; serverCert: string; serverKey: string };
  /** The gateway with the other worker count (1 when the main one runs 2, else 2). */
  otherWorkers?: GatewayUnderTest;
  /** The runtime the gateway runs on (the shipped one). */
  runtime: Runtime;
  /** The same gateway on the previous runtime, measured beside it (none with BENCH_PREVIOUS_RUNTIME=0). */
  previous?: { runtime: Runtime; gateway: GatewayUnderTest; rounds: number };
  /** Load and steal of the last measured case, for its verdicts (set by compare()). */
  system?: string;
  rounds: number;
  seconds: Windows;
  print(line: string): void;
  verdicts: Verdict[];
}

/** Seconds per measured round, by kind: medians of req/s are stable in shorter windows. */
export interface Windows {
  /** req/s and handshakes/s */
  rate: number;
  /** p99 at a fixed rate: needs enough requests above the 99th percentile */
  latency: number;
  /** GB/s of cached downloads */
  transfer: number;
}

/** BENCH_SECONDS sets every window; by default 3 s, 4 s for latency (4,000 requests a round). */
export function windows(): Windows {
  const all = process.env.BENCH_SECONDS ? Number(process.env.BENCH_SECONDS) : undefined;
  return { rate: all ?? 3, latency: all ?? 4, transfer: all ?? 3 };
}

/** The gateways to compare: the main one, the one with the other worker count if started, the
 * one on the previous runtime if started (with its round count). */
export function gatewaySides(ctx: BenchContext): { name: string; gateway: GatewayUnderTest; rounds?: number }[] {
  const other = ctx.otherWorkers;
  const prev = ctx.previous;
  return [
    { name: 'gateway', gateway: ctx.gateway },
    ...(other ? [{ name: `gateway ${other.workers}w`, gateway: other }] : []),
    ...(prev ? [{ name: prev.runtime.side, gateway: prev.gateway, rounds: prev.rounds }] : []),
  ];
}

/** The previous runtime's cell of a verdict: its median and its ratio against nginx's. */
export function previousCell(
  ctx: BenchContext,
  summary: Map<string, { median: number }>,
  nginx: number,
  fmt: (v: number) => string,
): string | undefined {
  const p = ctx.previous && summary.get(ctx.previous.runtime.side)?.median;
  if (p === undefined) return undefined;
  return `${fmt(p)} (${(p / nginx).toFixed(2)}×)`;
}

/** The worker-count figure: the same case with more and with fewer worker processes, and the ratio. */
export function workersVerdict(
  ctx: BenchContext,
  what: string,
  medians: Map<string, { median: number }>,
  fmt: (v: number) => string,
): void {
  const other = ctx.otherWorkers;
  if (!other) return;
  const byWorkers = [
    { workers: ctx.gateway.workers, value: medians.get('gateway')!.median },
    { workers: other.workers, value: medians.get(`gateway ${other.workers}w`)!.median },
  ].sort((a, b) => a.workers - b.workers);
  const [few, many] = byWorkers;
  const ratio = many.value / few.value;
  ctx.verdicts.push({
    system: ctx.system,
    name: `${what}: ${many.workers} vs ${few.workers} gateway workers`,
    gateway: `${few.workers}w ${fmt(few.value)}, ${many.workers}w ${fmt(many.value)}`,
    nginx: '–',
    ratio: `${many.workers}/${few.workers} workers ${ratio.toFixed(2)}×`,
    target: '(measure)',
    met: null,
  });
  ctx.print(
    `  → workers ${few.workers}: ${fmt(few.value)}, workers ${many.workers}: ${fmt(many.value)}: ${many.workers}/${few.workers} = ${ratio.toFixed(2)}×`,
  );
}

export function nginxUrl(ctx: BenchContext, listener: 'http' | 'https'): string {
  return `${listener}://127.0.0.1:${listener === 'http' ? ctx.nginxPorts.http : ctx.nginxPorts.https}`;
}

/** The presigned origin URL, as a device would fetch it through nginx in front of the store. */
export function viaNginx(ctx: BenchContext, presigned: string, listener: 'http' | 'https'): string {
  const u = new URL(presigned);
  return `${nginxUrl(ctx, listener)}${u.pathname}${u.search}`;
}

/** Run sides alternately, print one line each; returns the summaries by name. */
export async function compare(
  ctx: BenchContext,
  sides: Side[],
  fmt: (v: number) => string,
  rounds = ctx.rounds,
): Promise<{ samples: Samples; summary: Map<string, Summary> }> {
  const samples = await alternate(rounds, sides);
  const summary = new Map<string, Summary>();
  for (const [name, list] of samples) {
    const s = summarize(list);
    summary.set(name, s);
    ctx.print(describe(name, s, list, fmt));
  }
  const notes = [...samples.values()].flat().map((x) => x.note);
  ctx.system = systemRange(
    notes.map((n) => n.load1),
    notes.map((n) => n.stealPct),
  );
  return { samples, summary };
}

export const systemRange = (loads: number[], steals: number[]) =>
  `load ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}, steal ≤ ${Math.max(...steals).toFixed(0)}%`;

export function verdictLine(ctx: BenchContext, v: Verdict): void {
  ctx.verdicts.push({ system: ctx.system, ...v });
  if (v.previous) ctx.print(`  → ${ctx.previous?.runtime.label ?? 'previous runtime'}: ${v.previous}`);
  const mark = v.met === null ? '' : v.met ? '  met' : '  MISSED';
  ctx.print(`  → ${v.ratio} (target ${v.target})${mark}`);
}

export const gbps = (v: number) => `${(v / 1e9).toFixed(2)} GB/s`;
export const perSec = (v: number) => `${v.toFixed(0)}/s`;
export const ms = (v: number) => `${v.toFixed(2)} ms`;
export const secs = (v: number) => `${v.toFixed(2)} s`;
export const mb = (v: number) => `${(v / 1e6).toFixed(0)} MB`;
