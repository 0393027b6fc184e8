import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../spec/support/gateway-process';
import { runSoak } from '../spec/support/soak/soak';
import { loadAverage, machineLine } from './compare/report';
import { runMain } from './part-timer';

// `make soak`: a month of a site in about half an hour (spec/support/soak/soak.ts says what
// happens; docs/benchmarks.md "Soak" has the last run). Writes docs/soak/<name>.csv and .svg (and
// every failure with its time and reason in <name>.failures.csv, not kept in git) and prints the
// summary; exits non-zero when the soak fails. Knobs: SOAK_SECONDS (1800),
// SOAK_IDENTITIES_PER_SECOND (60: 108,000 identities in the half hour), SOAK_LANES (64),
// SOAK_OUT (docs/soak), SOAK_NAME (soak-<date>).

const env = (name: string, fallback: number): number => (process.env[name] ? Number(process.env[name]) : fallback);
const print = (line: string): void => void process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  const seconds = env('SOAK_SECONDS', 1800);
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT }).toString().trim();
  const name = process.env.SOAK_NAME ?? `soak-${new Date().toISOString().slice(0, 10)}`;
  print(`# soak: ${seconds} s at ${commit}, ${new Date().toISOString()}`);
  print(`machine: ${machineLine()}; load at start ${loadAverage()}`);
  const report = await runSoak({
    seconds,
    identitiesPerSecond: env('SOAK_IDENTITIES_PER_SECOND', 60),
    lanes: env('SOAK_LANES', 64),
    artifacts: 12,
    artifactBytes: env('SOAK_ARTIFACT_BYTES', 1 << 20),
    outDir: process.env.SOAK_OUT ?? join(REPO_ROOT, 'docs', 'soak'),
    name,
    print,
  });
  print(`load at the end ${loadAverage()}`);
  for (const line of report.summary) print(line);
  print(`figures: ${report.csv}${report.svg ? `, plot: ${report.svg}` : ' (no gnuplot: no plot)'}`);
  if (!report.passed) {
    for (const p of report.problems) print(`FAILED: ${p}`);
    process.exitCode = 1;
  } else print('soak: passed');
}

if (require.main === module) runMain('soak', main);
