// Where `make bench` spends its time (it must fit in 10 minutes on a fresh machine): every
// benchmark part is timed, one line printed as it ends, and run-all prints the table and the
// total at the end.

export interface PartTime {
  name: string;
  seconds: number;
}

const parts: PartTime[] = [];

export function partTimes(): readonly PartTime[] {
  return parts;
}

/** Run `fn` as the part `name`; its wall time is recorded (also when it throws) and printed. */
export async function timed<T>(
  name: string,
  fn: () => Promise<T>,
  print: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
): Promise<T> {
  const t0 = process.hrtime.bigint();
  try {
    return await fn();
  } finally {
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    parts.push({ name, seconds });
    print(`  [${name}: ${seconds.toFixed(1)} s]`);
  }
}

export function printPartTimes(totalSeconds: number, print: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): void {
  print('\n## time per part (wall clock)');
  print('| part | seconds |');
  print('|---|---|');
  for (const p of parts) print(`| ${p.name} | ${p.seconds.toFixed(1)} |`);
  print(`| **total** | **${totalSeconds.toFixed(0)}** (${(totalSeconds / 60).toFixed(1)} min) |`);
}

/** The entry of a benchmark or of a load process: Ctrl-C or `timeout` exits through process.exit,
 * so the 'exit' handlers stop nginx and the gateways and remove the temp dirs (1 GiB of files) as
 * on any other end; a failure prints its stack and exits 1. */
export function runMain(name: string, main: () => Promise<unknown>): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
  main().catch((err) => {
    process.stderr.write(`${name} failed: ${(err as Error).stack}\n`);
    process.exit(1);
  });
}
