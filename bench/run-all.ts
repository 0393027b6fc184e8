import { runCacheBench } from './cache-bench';
import { runNginxComparison } from './compare-nginx';
import { benchProxyStreamMemory } from './proxy-stream-memory';

// `make bench`: every benchmark, one after the other, printing figures and ratios against
// references measured in the same run. Not a test: nothing here passes or fails on speed.

async function main(): Promise<void> {
  await runCacheBench();
  await benchProxyStreamMemory();
  await runNginxComparison();
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
