import { runWrk } from '../load/wrk';
import { burst } from './case-cold';
import { compare, gatewaySides, gbps, previousCell, verdictLine, viaNginx, workersVerdict, type BenchContext } from './context';

// Cached artifacts: throughput of concurrent downloads over HTTP and HTTPS, also with the
// other worker count.

const MiB = 1024 * 1024;

/** One download through each server, so the artifact is in both caches before the timed part;
 * all at once (the fills are independent, and nothing is measured here). */
export async function warm(ctx: BenchContext, presigned: string, size: number): Promise<void> {
  const urls = [...gatewaySides(ctx).map((g) => g.gateway.link(presigned, 'http')), viaNginx(ctx, presigned, 'http')];
  await Promise.all(
    urls.map(async (url) => {
      const r = await burst(url, 1, size);
      if (r.complete !== 1)
        throw new Error(
          `warm-up download of ${size} bytes did not complete via ${new URL(url).host}: ${JSON.stringify(r)}\n${ctx.gateway.proc.output().slice(-3000)}`,
        );
    }),
  );
}

export async function cachedCase(ctx: BenchContext, presigned: string, key: string, size: number): Promise<void> {
  const connections = Number(process.env.BENCH_CACHED_CLIENTS ?? 50);
  const before = await ctx.origin.stats(key);
  for (const listener of ['http', 'https'] as const) {
    const gateways = gatewaySides(ctx);
    ctx.print(
      `\n## cached artifact over ${listener.toUpperCase()}: ${size / MiB} MiB, ${connections} concurrent downloads in a loop, wrk -t2 -c${connections}, ${ctx.seconds.transfer} s × ${ctx.rounds} rounds (GB/s; ${gateways.map((g) => `${g.name}: ${g.gateway.workers} worker(s)`).join(', ')})`,
    );
    const side = (name: string, url: string, rounds?: number) => ({
      name,
      rounds,
      run: async () => (await runWrk({ url, connections, seconds: ctx.seconds.transfer, threads: 2, timeoutSeconds: 120 })).bytesPerSec,
    });
    const { summary } = await compare(
      ctx,
      [
        ...gateways.map((g) => side(g.name, g.gateway.link(presigned, listener), g.rounds)),
        side('nginx', viaNginx(ctx, presigned, listener)),
      ],
      gbps,
    );
    const g = summary.get('gateway')!.median;
    const n = summary.get('nginx')!.median;
    verdictLine(ctx, {
      name: `cached ${size / MiB} MiB ×${connections}, ${listener.toUpperCase()}`,
      gateway: gbps(g),
      nginx: gbps(n),
      ratio: `gateway/nginx ${(g / n).toFixed(2)}×`,
      target: listener === 'https' ? '≥ 1.0×' : '≥ 0.90×',
      met: g / n >= (listener === 'https' ? 1 : 0.9),
      previous: previousCell(ctx, summary, n, gbps),
    });
    workersVerdict(ctx, `cached ${size / MiB} MiB ×${connections}, ${listener.toUpperCase()}`, summary, gbps);
  }
  const after = await ctx.origin.stats(key);
  ctx.print(
    `  origin requests for this artifact during the timed part: ${after.requests - before.requests} (both served from their caches when 0)`,
  );
}
