import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Verdict } from './context';

// The comparison's report: what ran where (tool versions, machine, load), and the summary
// table of every case against its target, MISSED where it is not met.

/** The tool's version line; a readable error when it is missing. */
export function toolVersion(name: string): string {
  const r = spawnSync(name, ['-v'], { encoding: 'utf8' });
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT')
    throw new Error(`${name} is not installed: \`make bench\` installs Debian's nginx and wrk with apt-get`);
  return `${r.stderr}${r.stdout}`.split('\n')[0].replace(/ Copyright.*/, '');
}

export const loadAverage = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

export function machineLine(): string {
  const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? '?';
  return `${cpu}, ${execFileSync('nproc', { encoding: 'utf8' }).trim()} vCPUs, loadavg ${loadAverage()}`;
}

/** `runtimes`: the gateway column's runtime ("Node 24") and, when measured, the previous one's column ("gateway on Node 20"). */
export function printSummary(print: (l: string) => void, verdicts: Verdict[], runtimes: { shipped: string; previous?: string }): void {
  print('\n## summary (gateway vs nginx, this machine, this run)');
  const prev = runtimes.previous;
  print(
    `| case | gateway (${runtimes.shipped}) | nginx | result | target | |${prev ? ` ${prev} (vs nginx) |` : ''} machine during the case |`,
  );
  print(`|---|---|---|---|---|---|${prev ? '---|' : ''}---|`);
  for (const v of verdicts)
    print(
      `| ${v.name} | ${v.gateway} | ${v.nginx} | ${v.ratio} | ${v.target} | ${v.met === null ? '' : v.met ? 'met' : '**MISSED**'} |${prev ? ` ${v.previous ?? '–'} |` : ''} ${v.system ?? ''} |`,
    );
  const missed = verdicts.filter((v) => v.met === false);
  print(missed.length ? `\nMISSED targets: ${missed.map((v) => v.name).join('; ')}` : '\nevery target met');
}
