import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// Clean Debian systems for the release-package test: `debootstrap --variant=minbase` roots made
// from Debian's own packages (no Node, no third-party repository), built once into a cache
// outside the repository and copied afresh for each run, with /proc and /dev bind-mounted and
// commands run with chroot. A chroot shares the host's network, so a gateway inside it and the
// test's emulator talk over 127.0.0.1. Every spawn has a timeout; mounts are always taken down,
// and a working root is deleted only once nothing is mounted under it.

export const CACHE_BASE = process.env.DEBIAN_ROOT_CACHE ?? '/var/cache/mender-gateway-tests';
const ROOTS = join(CACHE_BASE, 'debootstrap');
const WORK = join(CACHE_BASE, 'work');
/** A cached root older than this is made again (security and point-release updates). */
const MAX_AGE_DAYS = Number(process.env.DEBIAN_ROOT_MAX_AGE_DAYS ?? 14);
const DEBOOTSTRAP_TIMEOUT_MS = 15 * 60_000;
// A working root's mounts, deepest last: the chroot's own /dev/pts and /dev/shm stay the host's.
const MOUNTS = ['proc', 'dev'];

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** cmd with a timeout; env replaces the test process's environment when given. */
export function run(cmd: string, args: string[], timeoutMs = 60_000, input?: string, env?: NodeJS.ProcessEnv): Run {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
    input,
    env: env ?? { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  return { status: r.status, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

function must(cmd: string, args: string[], timeoutMs = 60_000): string {
  const r = run(cmd, args, timeoutMs);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}\n${r.stdout}${r.stderr}`.trim());
  return r.stdout;
}

function hasCommand(name: string): boolean {
  return run('sh', ['-c', `command -v ${name}`], 5_000).status === 0;
}

/** Why debootstrap roots cannot be made or entered here (one line), or null. */
export function cannotDebootstrap(): string | null {
  if (process.platform !== 'linux') return `debootstrap roots need Linux, not ${process.platform}`;
  if (process.getuid?.() !== 0) return 'not root: debootstrap, mount and chroot need root';
  for (const tool of ['debootstrap', 'chroot', 'mount', 'umount', 'dpkg-deb'])
    if (!hasCommand(tool)) return `no ${tool} on this machine (apt-get install debootstrap)`;
  return null;
}

/** Why the arm64 binary cannot be run under qemu-user here (one line), or null. */
export function cannotQemuArm64(): string | null {
  return cannotDebootstrap() ?? (hasCommand('qemu-aarch64-static') ? null : 'no qemu-aarch64-static (apt-get install qemu-user-static)');
}

/**
 * The Debian mirror this machine's apt uses (the first enabled source naming Debian's main
 * archive), so the roots come from where the machine's own packages do; DEBIAN_MIRROR overrides.
 */
export function debianMirror(): string {
  if (process.env.DEBIAN_MIRROR) return process.env.DEBIAN_MIRROR;
  const files: string[] = [];
  if (existsSync('/etc/apt/sources.list')) files.push('/etc/apt/sources.list');
  const dir = '/etc/apt/sources.list.d';
  if (existsSync(dir)) for (const f of readdirSync(dir).sort()) if (f.endsWith('.list') || f.endsWith('.sources')) files.push(join(dir, f));
  const uris: string[] = [];
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    if (f.endsWith('.sources')) {
      // deb822: stanzas separated by blank lines; Enabled: no turns one off.
      for (const stanza of text.split(/\n\s*\n/)) {
        if (/^Enabled:\s*no\b/im.test(stanza) || !/^Types:.*\bdeb\b/im.test(stanza)) continue;
        const m = /^URIs:\s*(.+)$/im.exec(stanza);
        if (m) uris.push(...m[1].trim().split(/\s+/));
      }
    } else {
      for (const line of text.split('\n')) {
        const m = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)/.exec(line);
        if (m) uris.push(m[1]);
      }
    }
  }
  return uris.find((u) => /^https?:\/\/.*\/debian\/?$/.test(u))?.replace(/\/$/, '') ?? 'http://deb.debian.org/debian';
}

interface Stamp {
  suite: string;
  arch: string;
  variant: string;
  mirror: string;
  /** ISO date of the build */
  built: string;
  /** debootstrap's wall time, seconds */
  seconds: number;
}

export interface CachedRoot {
  dir: string;
  stamp: Stamp;
  /** true when this call ran debootstrap (a cold cache) */
  built: boolean;
}

function readStamp(file: string): Stamp | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Stamp;
  } catch {
    return null;
  }
}

/**
 * A cached minbase root of suite for arch: reused while its stamp matches and is younger than
 * MAX_AGE_DAYS, else made again with debootstrap into a temporary directory and renamed into
 * place. `foreign` makes only debootstrap's first stage (packages unpacked, nothing configured),
 * which needs no emulation: enough as a sysroot of another architecture's loader and libraries.
 */
export function cachedRoot(suite: string, arch = 'amd64', foreign = false): CachedRoot {
  const name = `${suite}-${arch}${foreign ? '-foreign' : ''}`;
  const dir = join(ROOTS, name);
  const stampFile = join(ROOTS, `${name}.stamp`);
  const mirror = debianMirror();
  const variant = 'minbase';
  const old = readStamp(stampFile);
  const ageDays = old ? (Date.now() - Date.parse(old.built)) / 86_400_000 : Number.POSITIVE_INFINITY;
  if (old && existsSync(dir) && old.suite === suite && old.arch === arch && old.mirror === mirror && ageDays < MAX_AGE_DAYS)
    return { dir, stamp: old, built: false };

  mkdirSync(ROOTS, { recursive: true });
  const tmp = mkdtempSync(join(ROOTS, `.${name}.`));
  chmodSync(tmp, 0o755); // a root's / as on any system (mkdtemp makes 0700: no user could run a thing)
  const started = Date.now();
  try {
    const args = [`--variant=${variant}`, `--arch=${arch}`, ...(foreign ? ['--foreign'] : []), suite, tmp, mirror];
    const r = run('debootstrap', args, DEBOOTSTRAP_TIMEOUT_MS);
    if (r.status !== 0) {
      const log = existsSync(join(tmp, 'debootstrap', 'debootstrap.log'))
        ? readFileSync(join(tmp, 'debootstrap', 'debootstrap.log'), 'utf8')
        : '';
      throw new Error(`debootstrap ${args.join(' ')}: exit ${r.status}\n${(r.stdout + r.stderr + log).slice(-3000)}`);
    }
    // As Debian's container images do: no downloaded .debs or package lists, a smaller copy.
    must('sh', ['-c', 'rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/cache/apt/*.bin "$1"/var/lib/apt/lists/*_*', 'sh', tmp]);
    const stamp: Stamp = { suite, arch, variant, mirror, built: new Date().toISOString(), seconds: (Date.now() - started) / 1000 };
    removeTree(dir);
    renameSync(tmp, dir);
    writeFileSync(stampFile, `${JSON.stringify(stamp, null, 2)}\n`);
    return { dir, stamp, built: true };
  } catch (err) {
    removeTree(tmp);
    throw err;
  }
}

/** rm -rf that stays on its file system and refuses a tree with anything mounted under it. */
function removeTree(dir: string): void {
  if (!existsSync(dir)) return;
  const mounted = mountsUnder(dir);
  if (mounted.length > 0) throw new Error(`not removing ${dir}: still mounted: ${mounted.join(' ')}`);
  must('rm', ['-rf', '--one-file-system', dir], 120_000);
}

/** Mount points at or under dir, deepest first (from /proc/self/mountinfo). */
export function mountsUnder(dir: string): string[] {
  const octal = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => octal(line.split(' ')[4] ?? ''))
    .filter((p) => p === dir || p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** SIGKILL every process whose root directory is dir or under it; true when there were any. */
function killProcessesIn(dir: string): boolean {
  let found = false;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let root: string;
    try {
      root = readlinkSync(`/proc/${pid}/root`);
    } catch {
      continue; // gone, or a kernel thread
    }
    if (root !== dir && !root.startsWith(`${dir}/`)) continue;
    found = true;
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // already gone
    }
  }
  return found;
}

/** Stops what runs in dir, unmounts (lazily where a mount is busy), then deletes it. */
function tearDown(dir: string): void {
  if (killProcessesIn(dir)) spawnSync('sleep', ['0.5']);
  for (const point of mountsUnder(dir)) {
    if (run('umount', [point], 30_000).status !== 0) run('umount', ['-l', point], 30_000);
  }
  removeTree(dir);
}

const open = new Set<string>();
function tearDownAll(): void {
  for (const dir of open) {
    try {
      tearDown(dir);
    } catch {
      // nothing more can be done here; the next run's sweep retries
    }
  }
  open.clear();
}
// A test process that ends without its after() hook (an uncaught error, process.exit, a signal
// from a runner's timeout or Ctrl-C) still leaves no mount behind; the signal is raised again
// once the roots are down, so the process ends as it would have.
process.once('exit', tearDownAll);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    tearDownAll();
    process.kill(process.pid, signal);
  });
}

/** Working roots left by a test process that died (kill -9, a power cut): unmounted and removed. */
function sweepStale(): void {
  if (!existsSync(WORK)) return;
  for (const name of readdirSync(WORK)) {
    const pid = Number(/^(\d+)-/.exec(name)?.[1]);
    if (pid && pid !== process.pid && alive(pid)) continue;
    if (pid === process.pid && open.has(join(WORK, name))) continue;
    tearDown(join(WORK, name));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface ChrootOptions {
  timeoutMs?: number;
  /** run as this user of the root (setpriv inside the chroot, with the user's groups) */
  user?: string;
  env?: Record<string, string>;
  input?: string;
}

export interface DebianRoot {
  suite: string;
  /** the working copy on the host */
  dir: string;
  /** seconds spent copying the cached root */
  copySeconds: number;
  /** The host path of a path inside the root. */
  path(inside: string): string;
  /** A command inside the root (chroot), synchronously, with a timeout. */
  run(argv: string[], opts?: ChrootOptions): Run;
  /** A long-running command inside the root; the caller stops it (close() kills what is left). */
  spawn(argv: string[], opts?: Omit<ChrootOptions, 'timeoutMs' | 'input'>): ChildProcess;
  /** Kills what still runs inside, unmounts, deletes the copy. Safe to call twice. */
  close(): void;
}

const BASE_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };

function chrootArgv(dir: string, argv: string[], opts: { user?: string; env?: Record<string, string> }): string[] {
  // env -i: nothing of the test process's environment (its PATH, NODE_OPTIONS) leaks in.
  const env = Object.entries({ ...BASE_ENV, HOME: '/root', DEBIAN_FRONTEND: 'noninteractive', ...opts.env }).map(([k, v]) => `${k}=${v}`);
  const as = opts.user ? ['setpriv', `--reuid=${opts.user}`, `--regid=${opts.user}`, '--init-groups', '--'] : [];
  return [dir, '/usr/bin/env', '-i', ...env, ...as, ...argv];
}

/** A fresh working copy of the cached suite's root, with /proc and /dev mounted. */
export function openRoot(suite: string, arch = 'amd64'): DebianRoot & { cached: CachedRoot } {
  sweepStale();
  const cached = cachedRoot(suite, arch);
  mkdirSync(WORK, { recursive: true });
  const dir = mkdtempSync(join(WORK, `${process.pid}-${suite}-${arch}-`));
  chmodSync(dir, 0o755);
  open.add(dir);
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    tearDown(dir);
    open.delete(dir);
  };
  try {
    const started = Date.now();
    // cp -a of the cached directory: 0.8-1.4 s for bookworm's 127 MB, against 2-8 s to extract
    // the same tree from a tar (4-13 s from a tar.zst) on this machine.
    must('cp', ['-a', '--reflink=auto', `${cached.dir}/.`, dir], 300_000);
    const copySeconds = (Date.now() - started) / 1000;
    for (const m of MOUNTS) must('mount', ['--bind', `/${m}`, join(dir, m)]);
    return {
      suite,
      dir,
      cached,
      copySeconds,
      path: (inside) => join(dir, inside),
      run: (argv, opts = {}) => run('chroot', chrootArgv(dir, argv, opts), opts.timeoutMs ?? 60_000, opts.input),
      spawn: (argv, opts = {}) => spawn('chroot', chrootArgv(dir, argv, opts), { stdio: ['ignore', 'pipe', 'pipe'] }),
      close,
    };
  } catch (err) {
    close();
    throw err;
  }
}
