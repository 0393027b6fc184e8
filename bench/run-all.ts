import { runCacheBench } from './cache-bench';
import { runNginxComparison } from './compare-nginx';
import { printPartTimes, timed } from './part-timer';
import { benchProxyStreamMemory } from './proxy-stream-memory';

// `make bench`: every benchmark, one after the other, printing figures and ratios against
// references measured in the same run. Not a test: nothing here passes or fails on speed.

async function main(): Promise<void> {
  const t0 = process.hrtime.bigint();
  await timed('cache-bench (all)', () => runCacheBench());
  await timed('proxy-stream-memory (all)', () => benchProxyStreamMemory());
  await timed('nginx comparison (all)', () => runNginxComparison());
  printPartTimes(Number(process.hrtime.bigint() - t0) / 1e9);
}

// Ctrl-C or `timeout`: exit through process.exit, so the 'exit' handlers stop nginx and the
// gateways and remove the temp dirs (1 GiB of files) as on any other end.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

main().catch((err) => {
  process.stderr.write(`bench failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
