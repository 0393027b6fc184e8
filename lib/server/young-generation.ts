// V8's young generation: how big it may grow in a serving process. Node 24's V8 lets each
// semi-space grow to 64 MiB on a host with this much memory (Node 20: 16 MiB), so a burst of
// allocation can leave 128 MiB of new space behind, and its scavenges grow with it. The flag
// cannot be changed once a process runs (v8.setFlagsFromString does not resize the heap), so a
// serving process starts with it: workers at fork (workers.ts), a single process or cluster
// primary by replacing itself once at start (below), unless the operator chose a size.
//
// Measured (bench-connections, Workers: 1, 5,000 held TLS WebSockets, Node 24): 350-356 MB at
// 5,000 devices with the flag against 375-377 MB without, longest GC pause 7 against 22 ms (the
// poll p99 moved 7.6-54.7 ms with and 47.6-52.2 without: the box's share of it is large). 200
// HTTPS downloads of a cached 1 GiB artifact, one process (Node 20): peak RSS 147 MB without,
// 123 MB with.
import cluster from 'node:cluster';

export const SEMI_SPACE_FLAG = '--max-semi-space-size=2';

/** The operator chose a young generation size, on the command line or in NODE_OPTIONS. */
export function semiSpaceChosen(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  return [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].some((a) => /^--(max|min)[-_]semi[-_]space[-_]size/.test(a));
}

/** Commands that serve nothing (version, help, check-config, cache): not worth a second start. */
function serves(argv: readonly string[]): boolean {
  if (argv[0] === 'check-config' || argv[0] === 'cache') return false;
  return !argv.some((a) => a === '--version' || a === '-h' || a === '--help' || a === '-t' || a === '--check-config');
}

export interface StartFacts {
  /** The gateway's own arguments (after the script). */
  argv: readonly string[];
  execArgv: readonly string[];
  nodeOptions: string | undefined;
  isPrimary: boolean;
  /** process.execve exists (Node ≥ 22.15 and 23.11). */
  canExec: boolean;
  /** A single executable application: its argv carries no node flags. */
  isSea: boolean;
}

/** The node arguments to start again with, or null to go on as is. */
export function restartArgs(f: StartFacts, script: string): string[] | null {
  if (!f.isPrimary || !f.canExec || f.isSea || !serves(f.argv)) return null;
  if (semiSpaceChosen(f.execArgv, f.nodeOptions)) return null;
  return [SEMI_SPACE_FLAG, ...f.execArgv, script, ...f.argv];
}

/**
 * Called first by bin/gateway.js: replaces this process (same pid, same descriptors, nothing
 * started yet) with itself started with SEMI_SPACE_FLAG, when it serves and nothing chose a
 * size. The packages' launchers pass the flag already (their /usr/bin wrapper, the systemd unit,
 * OpenWrt, Docker), so there this does nothing: Node aborts the process when execve fails (ENOEXEC
 * for a foreign binary under qemu-user), which a package must never risk. `node bin/gateway.js`
 * by hand gets the same heap as the packaged service.
 */
export function startWithSmallYoungGeneration(): void {
  let isSea = false;
  try {
    isSea = (require('node:sea') as { isSea(): boolean }).isSea();
  } catch {
    // No node:sea: not a single executable application.
  }
  const execve = (process as { execve?: (file: string, args: string[], env: NodeJS.ProcessEnv) => never }).execve;
  const args = restartArgs(
    {
      argv: process.argv.slice(2),
      execArgv: process.execArgv,
      nodeOptions: process.env.NODE_OPTIONS,
      isPrimary: cluster.isPrimary,
      canExec: typeof execve === 'function',
      isSea,
    },
    process.argv[1]!,
  );
  if (args) execve!.call(process, process.execPath, [process.execPath, ...args], process.env);
}
