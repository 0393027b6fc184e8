import { promises as fsp } from 'node:fs';
import type * as lockfile from 'proper-lockfile';
import { randomBytes } from 'node:crypto';
import { deadOwnerHere, lockTarget, ownerPath, ownerRecord, type CacheLayout } from './cache-layout';

// The cross-process half of single flight (STYLE principle 6, peers-and-performance §3.3).
// realpath:false because the entry does not exist yet; retries:0 because the in-process
// map already serialises our own callers; onCompromised aborts that one fill instead of
// proper-lockfile's default, which throws from a timer and kills the process. The lock is
// not the only guard: each process writes its own tmp file and publishes by rename.

export interface HeldLock {
  /** Aborted when the lock is compromised (taken over, or not refreshed in time). */
  signal: AbortSignal;
  /** Tell other processes where the bytes are landing, so their devices can follow. */
  announce(fill: FillAnnouncement): Promise<void>;
  release(): Promise<void>;
}

/** The owner record once the fill knows its length: other processes follow `tmp` up to `size`. */
export interface FillAnnouncement {
  tmp: string;
  size: number;
  etag: string | null;
  lastModified?: string | null;
  /** The origin's host/path, for `cache list`. */
  key?: string;
}

/** What the lock holder announced, or null (not yet, unreadable, or a dead holder's leftover). */
export async function readAnnouncement(layout: CacheLayout, id: string): Promise<FillAnnouncement | null> {
  try {
    const rec = JSON.parse(await fsp.readFile(ownerPath(layout, id), 'utf8')) as Partial<FillAnnouncement> & {
      host?: string;
      pid?: number;
    };
    if (typeof rec.tmp !== 'string' || !Number.isSafeInteger(rec.size) || typeof rec.pid !== 'number') return null;
    if (deadOwnerHere(rec)) return null;
    return {
      tmp: rec.tmp,
      size: rec.size as number,
      etag: typeof rec.etag === 'string' ? rec.etag : null,
      lastModified: typeof rec.lastModified === 'string' ? rec.lastModified : null,
      key: typeof rec.key === 'string' ? rec.key : undefined,
    };
  } catch {
    return null;
  }
}

/** Replace a small file in one step (readers see the old or the new record, never half). */
async function writeAtomically(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await fsp.writeFile(tmp, text);
  await fsp.rename(tmp, file);
}

export interface LockTiming {
  staleMs: number;
  updateMs: number;
}

/** Take the fill lock for `id`, or null when another live process holds it. */
// proper-lockfile and what it pulls in (graceful-fs patches fs) cost ~5 MB of RSS: loaded at
// the first fill, not by a gateway that only serves what it has.
let lockfileModule: typeof lockfile | undefined;
const lockFile = (): typeof lockfile => (lockfileModule ??= require('proper-lockfile') as typeof lockfile);

export async function tryFillLock(layout: CacheLayout, id: string, timing: LockTiming): Promise<HeldLock | null> {
  const target = lockTarget(layout, id);
  const compromised = new AbortController();
  const options: lockfile.LockOptions = {
    realpath: false,
    retries: 0,
    stale: timing.staleMs,
    update: timing.updateMs,
    onCompromised: (err) => compromised.abort(err),
  };
  let release: () => Promise<void>;
  try {
    release = await lockFile().lock(target, options);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
    // A kill -9'd holder on this host is known dead at once; no need to wait out `stale`.
    if (!(await lockAbandoned(`${target}.lock`, ownerPath(layout, id), timing.staleMs))) return null;
    await fsp.rm(`${target}.lock`, { recursive: true, force: true });
    try {
      release = await lockFile().lock(target, options);
    } catch (again) {
      if ((again as NodeJS.ErrnoException).code === 'ELOCKED') return null;
      throw again;
    }
  }
  await writeAtomically(ownerPath(layout, id), ownerRecord()).catch(() => undefined);
  return {
    signal: compromised.signal,
    async announce(fill) {
      const record = { ...(JSON.parse(ownerRecord()) as object), ...fill };
      await writeAtomically(ownerPath(layout, id), JSON.stringify(record)).catch(() => undefined);
    },
    async release() {
      if (!compromised.signal.aborted) await fsp.rm(ownerPath(layout, id), { force: true });
      await release().catch(() => undefined);
    },
  };
}

/**
 * Bytes the fills of other processes on this cache path still have to write (announced size
 * minus what their tmp file holds): the free space a new fill must leave them. `known` are
 * the tmp files this process already counts (its own fills, and those it follows).
 */
export async function bytesToComeElsewhere(layout: CacheLayout, known: ReadonlyMap<string, number>): Promise<number> {
  let names: string[];
  try {
    names = await fsp.readdir(layout.locks);
  } catch {
    return 0;
  }
  let total = 0;
  for (const name of names) {
    const m = /^([0-9a-f]{64})\.owner$/.exec(name);
    if (!m) continue;
    const fill = await readAnnouncement(layout, m[1]!);
    if (!fill || known.has(fill.tmp)) continue;
    const written = await fsp.stat(fill.tmp).then(
      (st) => st.size,
      () => fill.size,
    );
    total += Math.max(0, fill.size - written);
  }
  return total;
}

/** A lock is abandoned when its recorded holder is dead, or when it was not refreshed within `staleMs`. */
export async function lockAbandoned(lockDir: string, ownerFile: string, staleMs: number, now = Date.now()): Promise<boolean> {
  let mtime: number;
  try {
    mtime = (await fsp.stat(lockDir)).mtimeMs;
  } catch {
    return false;
  }
  if (now - mtime > staleMs) return true;
  try {
    // Written right after the lock is taken and overwritten by every later holder, so a dead
    // pid here means the holder died (the tmp-and-rename publish covers the rare misjudgement).
    return deadOwnerHere(JSON.parse(await fsp.readFile(ownerFile, 'utf8')) as object);
  } catch {
    return false;
  }
}
