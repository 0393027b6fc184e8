import { runJsonChild } from '../load/child-json';
import { compare, secs, verdictLine, viaNginx, type BenchContext } from './context';

// A cold artifact fetched by many devices at once through a throttled origin: upstream
// downloads per burst, and the burst's time against one device alone.

const MiB = 1024 * 1024;

export interface Burst {
  seconds: number;
  clientCpu: number;
  complete: number;
  devices: number;
}

export const burst = (url: string, devices: number, expectBytes: number) =>
  runJsonChild<Burst>('burst-process.js', { url, devices, expectBytes });

export async function coldCase(ctx: BenchContext, coldFile: string): Promise<void> {
  const devices = Number(process.env.BENCH_COLD_DEVICES ?? 500);
  const size = Number(process.env.BENCH_COLD_MB ?? 4) * MiB;
  const rate = Number(process.env.BENCH_COLD_RATE_MB ?? 0.5) * MiB;
  const rounds = Number(process.env.BENCH_COLD_ROUNDS ?? 2);
  // Fresh keys for every download burst: a cold artifact is one neither cache has seen.
  const keyOf = (side: string, label: string) => `cold/${side}-${label}.mender`;
  const prev = ctx.previous;
  const names = ['gateway', ...(prev ? [prev.runtime.side] : []), 'nginx'];
  const urls = new Map<string, string>();
  for (const side of names) {
    for (const label of ['alone', ...Array.from({ length: rounds }, (_, r) => `round${r}`)])
      urls.set(keyOf(side, label), await ctx.origin.put(keyOf(side, label), coldFile));
  }
  const link = (side: string, presigned: string) =>
    side === 'gateway'
      ? ctx.gateway.link(presigned, 'http')
      : prev && side === prev.runtime.side
        ? prev.gateway.link(presigned, 'http')
        : viaNginx(ctx, presigned, 'http');
  ctx.print(
    `\n## cold artifact: ${size / MiB} MiB, origin throttled to ${rate / MiB} MiB/s per response (an uplink), ${devices} devices at once vs 1 alone, ${rounds} rounds (time ratio N/1)`,
  );
  await ctx.origin.throttle(rate);
  try {
    // One device alone takes the fill time, set by the throttle: measured once per side, both
    // sides at once (two throttled downloads leave the CPU idle; the throttle is per response).
    const alone = new Map<string, number>();
    await Promise.all(
      names.map(async (side) => alone.set(side, (await burst(link(side, urls.get(keyOf(side, 'alone'))!), 1, size)).seconds)),
    );
    const lines: string[] = [];
    const upstream = new Map<string, number[]>();
    const side = (name: string, sideRounds?: number) => ({
      name,
      rounds: sideRounds,
      run: async (round: number) => {
        const key = keyOf(name, `round${round}`);
        const many = await burst(link(name, urls.get(key)!), devices, size);
        const stats = await ctx.origin.stats(key);
        lines.push(
          `${name} round ${round + 1}: ${devices} devices ${secs(many.seconds)} (${many.complete}/${devices} complete, client process used ${(many.clientCpu * 100).toFixed(0)}% of a core; 1 alone ${secs(alone.get(name)!)}), origin full downloads ${stats.fullDownloads}, origin bytes / size ${(stats.bytesServed / size).toFixed(2)}`,
        );
        upstream.set(name, [...(upstream.get(name) ?? []), many.complete === devices ? stats.fullDownloads : NaN]);
        return many.seconds / alone.get(name)!;
      },
    });
    const { summary } = await compare(
      ctx,
      [side('gateway'), ...(prev ? [side(prev.runtime.side, prev.rounds)] : []), side('nginx')],
      (v) => `${v.toFixed(2)}×`,
      rounds,
    );
    for (const line of lines) ctx.print(`  ${line}`);
    const g = summary.get('gateway')!.median;
    const n = summary.get('nginx')!.median;
    const worst = (name: string) => Math.max(...(upstream.get(name) ?? [NaN]));
    verdictLine(ctx, {
      name: `cold, ${devices} devices: upstream downloads`,
      gateway: String(worst('gateway')),
      nginx: String(worst('nginx')),
      ratio: `gateway fetched it ${worst('gateway')}× per burst`,
      target: 'exactly 1',
      met: worst('gateway') === 1,
      previous: prev ? String(worst(prev.runtime.side)) : undefined,
    });
    verdictLine(ctx, {
      name: `cold, ${devices} devices: time vs 1 alone`,
      gateway: `${g.toFixed(2)}×`,
      nginx: `${n.toFixed(2)}×`,
      ratio: `gateway ${g.toFixed(2)}× one device (nginx ${n.toFixed(2)}×)`,
      target: '≤ 1.20×',
      met: g <= 1.2,
      previous: prev ? `${summary.get(prev.runtime.side)!.median.toFixed(2)}×` : undefined,
    });
  } finally {
    await ctx.origin.throttle(0);
  }
}
