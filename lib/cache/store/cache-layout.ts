import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { promises as fsp } from 'node:fs';
import { SELF, processAlive, type ProcessIdentity } from '../../server/process-liveness';

// On-disk layout, versioned so a future format can live beside this one (STYLE principle 7):
//   <Path>/v1/objects/<id>        published artifact bytes
//   <Path>/v1/objects/<id>.json   sidecar metadata; its rename is the commit point
//   <Path>/v1/tmp/<id>.<host>.<pid>[-<start>].<rand>[.json]   a fill in progress, one per process
//   <Path>/v1/locks/<id>.lock     proper-lockfile's directory; <id>.owner names its holder
//   <Path>/v1/partial/<id>[.json] a fill stopped by a shutdown or Ctrl-C, never served; the next fill resumes it
//   <Path>/v1/hits/<id>           one byte appended per serve from the cache (O_APPEND: every process counts)
//   <Path>/v1/fills/<host>.<pid>[-<start>].<rand>   a fill sharing the uplink cap (FillRateLimit), mtime refreshed
// Other files in <Path> (the link-signing secret) are never touched.

export const LAYOUT_VERSION = 'v1';

export interface CacheLayout {
  root: string;
  objects: string;
  tmp: string;
  locks: string;
  partial: string;
  hits: string;
}

export function cacheLayout(cachePath: string): CacheLayout {
  const root = path.join(path.resolve(cachePath), LAYOUT_VERSION);
  return {
    root,
    objects: path.join(root, 'objects'),
    tmp: path.join(root, 'tmp'),
    locks: path.join(root, 'locks'),
    partial: path.join(root, 'partial'),
    hits: path.join(root, 'hits'),
  };
}

export const objectPath = (l: CacheLayout, id: string) => path.join(l.objects, id);
export const sidecarPath = (l: CacheLayout, id: string) => path.join(l.objects, `${id}.json`);
/** The path proper-lockfile is asked to lock (it creates `<this>.lock`). */
export const lockTarget = (l: CacheLayout, id: string) => path.join(l.locks, id);
export const ownerPath = (l: CacheLayout, id: string) => path.join(l.locks, `${id}.owner`);
export const partialPath = (l: CacheLayout, id: string, suffix = '') => path.join(l.partial, `${id}${suffix}`);
export const hitsPath = (l: CacheLayout, id: string) => path.join(l.hits, id);
/** Registrations of the fills sharing ArtifactsCache.FillRateLimit (made only when it is on). */
export const fillsDir = (l: CacheLayout) => path.join(l.root, 'fills');

const HOST = hostname().replace(/[^A-Za-z0-9-]/g, '_');

/** `<host>.<pid>[-<start>]`: this process, as file names under the layout name their owner. */
export function ownerTag(): string {
  return `${HOST}.${SELF.start === undefined ? SELF.pid : `${SELF.pid}-${SELF.start}`}`;
}

/** A temporary name no other process (or other fill of this one) can pick. */
export function tmpPath(l: CacheLayout, id: string, suffix = ''): string {
  return path.join(l.tmp, `${id}.${ownerTag()}.${randomBytes(6).toString('hex')}${suffix}`);
}

export interface TmpOwner extends ProcessIdentity {
  host: string;
}

/** Who wrote a tmp file, from its name; null when the name is not ours. */
export function parseTmpName(name: string): TmpOwner | null {
  const m = /^[0-9a-f]{64}\.([A-Za-z0-9_-]+)\.(\d+)(?:-(\d+))?\.[0-9a-f]{12}(?:\.json)?$/.exec(name);
  if (!m) return null;
  return m[3] === undefined ? { host: m[1], pid: Number(m[2]) } : { host: m[1], pid: Number(m[2]), start: Number(m[3]) };
}

/** Who made a `<host>.<pid>[-<start>].<rand>` file (fills/); null when the name is not ours. */
export function parseOwnedName(name: string): TmpOwner | null {
  const m = /^([A-Za-z0-9_-]+)\.(\d+)(?:-(\d+))?\.[0-9a-f]{12}$/.exec(name);
  if (!m) return null;
  return m[3] === undefined ? { host: m[1], pid: Number(m[2]) } : { host: m[1], pid: Number(m[2]), start: Number(m[3]) };
}

export function isThisHost(owner: { host: string }): boolean {
  return owner.host === HOST;
}

/** A record's owner (`{host, pid, start}`) is a dead process of this host. */
export function deadOwnerHere(rec: { host?: unknown; pid?: unknown; start?: unknown }): boolean {
  if (typeof rec.pid !== 'number' || String(rec.host) !== HOST) return false;
  return !processAlive({ pid: rec.pid, start: typeof rec.start === 'number' ? rec.start : undefined });
}

export function ownerRecord(): string {
  return JSON.stringify({ host: HOST, ...SELF });
}

export const ENTRY_ID = /^[0-9a-f]{64}$/;

/** Create the layout's directories (at start, and again if they were deleted under us). */
export async function ensureLayout(layout: CacheLayout): Promise<void> {
  for (const dir of [layout.objects, layout.tmp, layout.locks, layout.partial, layout.hits]) await fsp.mkdir(dir, { recursive: true });
}
