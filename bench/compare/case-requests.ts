import { runJsonChild } from '../load/child-json';
import { runWrk } from '../load/wrk';
import { compare, gatewaySides, ms, perSec, previousCell, verdictLine, workersVerdict, type BenchContext } from './context';
import { median } from './rounds';

// Small requests: pass-through of deployments/next (204 from the lean stub, keep-alive) at
// peak rate (also with the other worker count) and at a fixed 1,000 req/s. (mTLS
// handshakes: case-mtls.ts.)

const NEXT = '/api/devices/v1/deployments/device/deployments/next?artifact_name=bench-current&device_type=bench';

export async function passThroughCase(ctx: BenchContext): Promise<void> {
  const headers = { Authorization: `Bearer ${ctx.origin.deviceToken}` };
  const direct = `http://127.0.0.1:${ctx.origin.stubPort}${NEXT}`;
  const gw = `${ctx.gateway.url('http')}${NEXT}`;
  const ng = `http://127.0.0.1:${ctx.nginxPorts.pass}${NEXT}`;
  const gateways = gatewaySides(ctx).map(({ name, gateway, rounds }) => ({
    name,
    rounds,
    workers: gateway.workers,
    url: `${gateway.url('http')}${NEXT}`,
  }));
  const connections = 64;
  const seconds = ctx.seconds.rate;
  ctx.print(
    `\n## pass-through: GET deployments/next → 204, keep-alive, wrk -t1 -c${connections}, ${seconds} s × ${ctx.rounds} rounds after a 1 s warm-up (req/s; upstream: a lean 204 stub, direct = the stub alone, first round only; ${gateways.map((g) => `${g.name}: ${g.workers} worker(s)`).join(', ')})`,
  );
  // Untimed: the first second of a fresh process is JIT and connection set-up, not its rate.
  for (const url of [direct, ...gateways.map((g) => g.url), ng]) await runWrk({ url, connections, seconds: 1, headers });
  const errors: string[] = [];
  const side = (name: string, url: string, once = false, rounds?: number) => ({
    name,
    once,
    rounds,
    run: async () => {
      const r = await runWrk({ url, connections, seconds, headers });
      if (r.errors > 0) errors.push(`${name}: ${r.errors} errors/non-2xx`);
      return r.requestsPerSec;
    },
  });
  const { summary } = await compare(
    ctx,
    [side('direct', direct, true), ...gateways.map((g) => side(g.name, g.url, false, g.rounds)), side('nginx', ng)],
    perSec,
  );
  if (errors.length) ctx.print(`  errors: ${errors.join('; ')}`);
  const g = summary.get('gateway')!.median;
  const n = summary.get('nginx')!.median;
  const d = summary.get('direct')!.median;
  ctx.print(`  gateway/direct ${(g / d).toFixed(2)}×, nginx/direct ${(n / d).toFixed(2)}×`);
  verdictLine(ctx, {
    name: 'pass-through req/s, 64 conns',
    gateway: perSec(g),
    nginx: perSec(n),
    ratio: `gateway/nginx ${(g / n).toFixed(2)}×`,
    target: '≥ 0.50×',
    met: g / n >= 0.5,
    previous: previousCell(ctx, summary, n, perSec),
  });
  workersVerdict(ctx, 'pass-through req/s', summary, perSec);

  const rate = Number(process.env.BENCH_RATE ?? 1000);
  ctx.print(
    `\n## pass-through latency at a fixed ${rate} req/s (16 keep-alive connections, corrected for coordinated omission), ${ctx.seconds.latency} s × ${ctx.rounds} rounds, p99`,
  );
  const fixed = (name: string, url: string, rounds?: number) => ({
    name,
    rounds,
    run: async () =>
      (await runJsonChild<{ p99: number }>('fixed-rate-process.js', { url, rate, seconds: ctx.seconds.latency, connections: 16, headers }))
        .p99,
  });
  const prev = ctx.previous;
  const { samples } = await compare(
    ctx,
    [
      fixed('direct', direct),
      fixed('gateway', gw),
      ...(prev ? [fixed(prev.runtime.side, `${prev.gateway.url('http')}${NEXT}`, prev.rounds)] : []),
      fixed('nginx', ng),
    ],
    ms,
  );
  const added = (name: string) => median(samples.get(name)!.map((s, i) => s.value - samples.get('direct')![i].value));
  const ag = added('gateway');
  const an = added('nginx');
  const ap = prev ? added(prev.runtime.side) : undefined;
  ctx.print(
    `  p99 added over direct (median of per-round differences): gateway ${ms(ag)}, nginx ${ms(an)}${ap !== undefined ? `, ${prev!.runtime.side} ${ms(ap)}` : ''}`,
  );
  verdictLine(ctx, {
    name: `p99 added at ${rate} req/s`,
    gateway: ms(ag),
    nginx: ms(an),
    ratio: `gateway adds ${ms(ag)}`,
    target: '≤ 2 ms',
    met: ag <= 2,
    previous: ap !== undefined ? `adds ${ms(ap)}` : undefined,
  });
}
