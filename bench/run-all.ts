import { runCacheBench } from './cache-bench';
import { runNginxComparison } from './compare-nginx';
import { printPartTimes, runMain, timed } from './part-timer';
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

runMain('bench', main);
