import type { CertPair } from '../../spec/support/tls-material';
import type { GatewaySetup, GatewayUnderTest } from './gateway-under-test';
import type { NginxProcess } from '../nginx/nginx-process';
import type { OriginHandle } from './origin';
import { alternate, describe, summarize, type Samples, type Side, type Summary } from './rounds';

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
}

export interface BenchContext {
  dir: string;
  origin: OriginHandle;
  gateway: GatewayUnderTest;
  nginx: NginxProcess;
  nginxPorts: { http: number; https: number; mtls: number; pass: number };
  setup: GatewaySetup;
  tls: { ca: CertPair; serverCert: string; serverKey: string };
  rounds: number;
  seconds: number;
  print(line: string): void;
  verdicts: Verdict[];
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
export async function compare(ctx: BenchContext, sides: Side[], fmt: (v: number) => string, rounds = ctx.rounds): Promise<{ samples: Samples; summary: Map<string, Summary> }> {
  const samples = await alternate(rounds, sides);
  const summary = new Map<string, Summary>();
  for (const [name, list] of samples) {
    const s = summarize(list);
    summary.set(name, s);
    ctx.print(describe(name, s, list, fmt));
  }
  return { samples, summary };
}

export function verdictLine(ctx: BenchContext, v: Verdict): void {
  ctx.verdicts.push(v);
  const mark = v.met === null ? '' : v.met ? '  met' : '  MISSED';
  ctx.print(`  → ${v.ratio} (target ${v.target})${mark}`);
}

export const gbps = (v: number) => `${(v / 1e9).toFixed(2)} GB/s`;
export const perSec = (v: number) => `${v.toFixed(0)}/s`;
export const ms = (v: number) => `${v.toFixed(2)} ms`;
export const secs = (v: number) => `${v.toFixed(2)} s`;
export const mb = (v: number) => `${(v / 1e6).toFixed(0)} MB`;
