import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { REPO_ROOT } from '../../spec/support/gateway-process';

// The runtimes the gateway under test runs on: the shipped one (the `node` running the bench,
// node_modules/.bin/node under make) and, beside it in the same run, the previous one (Node 20,
// what the project ran on until this release), so every figure has a column for each. The load
// generators, nginx and the upstreams are the same for both.
// BENCH_PREVIOUS_RUNTIME: unset or 1 = Node 20 from support/runtime/fetch-node.js (fetched once
// from the npm registry, checked against its pinned integrity); 0 = no previous column; any
// other value = the path of a `node` to use for that column.

export interface Runtime {
  /** The `node` binary. */
  node: string;
  /** e.g. v20.20.2 */
  version: string;
  /** The column's and side's name: "gateway on Node 20". */
  label: string;
  /** The short side name in per-round lines: "gw node20". */
  side: string;
}

const versionOf = (node: string) => execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();

function runtime(node: string): Runtime {
  const version = versionOf(node);
  const major = version.replace(/^v/, '').split('.')[0];
  return { node, version, label: `gateway on Node ${major}`, side: `gw node${major}` };
}

export function shippedRuntime(): Runtime {
  return runtime(process.execPath);
}

/** The previous runtime's column, or undefined when BENCH_PREVIOUS_RUNTIME=0. */
export function previousRuntime(): Runtime | undefined {
  const choice = process.env.BENCH_PREVIOUS_RUNTIME ?? '1';
  if (choice === '0') return undefined;
  if (choice !== '1') return runtime(choice);
  const fetcher = path.join(REPO_ROOT, 'support', 'runtime', 'fetch-node.js');
  try {
    return runtime(execFileSync(process.execPath, [fetcher, 'previous'], { encoding: 'utf8', timeout: 600_000 }).trim());
  } catch (err) {
    const why = `${(err as { stderr?: string }).stderr ?? (err as Error).message}`.trim().split('\n')[0];
    throw new Error(`the previous runtime (Node 20) could not be had (${why}); BENCH_PREVIOUS_RUNTIME=0 runs without its column`);
  }
}

/** How many rounds the previous runtime's side runs (BENCH_PREVIOUS_ROUNDS; default: all of them). */
export const previousRounds = (rounds: number) => Math.min(rounds, Number(process.env.BENCH_PREVIOUS_ROUNDS ?? rounds));
