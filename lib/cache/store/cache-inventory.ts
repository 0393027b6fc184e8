import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { parseTmpName, isThisHost, objectPath, sidecarPath, type CacheLayout } from './cache-layout';
import { parseSidecar, readHits } from './cache-index';
import { readAnnouncement } from './fill-lock';
import { listPartials, removePartial } from './partial-fill';
import { removeEntry } from './evict-lru';
import { processAlive } from '../../server/process-liveness';

// What is on a cache path, read from the disk alone, so `mender-gateway cache` works beside a
// running gateway or without one: published entries, fills running in some process, partial
// files a stopped fill left for the next one to resume.

export type EntryState = 'complete' | 'filling' | 'partial';

export interface ListedEntry {
  id: string;
  /** host/path of the origin (cache-key.ts). */
  key: string;
  /** The last path segment of the key: Mender's storage names artifact objects by their id. */
  artifact: string;
  state: EntryState;
  size: number;
  /** Bytes on disk (= size when complete). */
  bytes: number;
  lastUsed: Date | null;
  hits: number;
}

export function artifactOf(key: string): string {
  return decodeURIComponent(key.slice(key.lastIndexOf('/') + 1));
}

export async function listEntries(layout: CacheLayout): Promise<ListedEntry[]> {
  const out: ListedEntry[] = [];
  const names = await fsp.readdir(layout.objects).catch(() => [] as string[]);
  for (const name of names) {
    const m = /^([0-9a-f]{64})\.json$/.exec(name);
    if (!m) continue;
    const id = m[1]!;
    const meta = await fsp.readFile(sidecarPath(layout, id), 'utf8').then(parseSidecar, () => null);
    const st = await fsp.stat(objectPath(layout, id)).catch(() => null);
    if (!meta || !st) continue;
    out.push({
      id,
      key: meta.key,
      artifact: artifactOf(meta.key),
      state: 'complete',
      size: meta.size,
      bytes: st.size,
      lastUsed: st.mtime,
      hits: await readHits(layout, id),
    });
  }
  for (const p of await listPartials(layout)) {
    out.push({
      id: p.id,
      key: p.key,
      artifact: artifactOf(p.key),
      state: 'partial',
      size: p.size,
      bytes: p.written,
      lastUsed: new Date(p.mtimeMs),
      hits: 0,
    });
  }
  for (const f of await runningFills(layout)) out.push(f);
  return out.sort((a, b) => a.key.localeCompare(b.key) || a.state.localeCompare(b.state));
}

/** Fills running now (any live process on this host), from their lock announcements and tmp files. */
async function runningFills(layout: CacheLayout): Promise<ListedEntry[]> {
  const out: ListedEntry[] = [];
  const seen = new Set<string>();
  for (const name of await fsp.readdir(layout.tmp).catch(() => [] as string[])) {
    const owner = parseTmpName(name);
    if (!owner || name.endsWith('.json') || (isThisHost(owner) && !processAlive(owner))) continue;
    const id = name.slice(0, 64);
    if (seen.has(id)) continue;
    const announced = await readAnnouncement(layout, id);
    if (!announced || path.basename(announced.tmp) !== name) continue;
    const st = await fsp.stat(path.join(layout.tmp, name)).catch(() => null);
    if (!st) continue;
    seen.add(id);
    const key = announced.key ?? id;
    out.push({
      id,
      key,
      artifact: artifactOf(key),
      state: 'filling',
      size: announced.size,
      bytes: st.size,
      lastUsed: st.mtime,
      hits: await readHits(layout, id),
    });
  }
  return out;
}

/** Entries an operator's word names: an entry id (or a unique prefix of 8+), an origin key, or an artifact id. */
export function matchEntries(entries: readonly ListedEntry[], word: string): ListedEntry[] {
  const w = word.trim();
  if (/^[0-9a-f]{8,64}$/.test(w)) {
    const byId = entries.filter((e) => e.id.startsWith(w));
    if (byId.length > 0) return byId;
  }
  return entries.filter((e) => e.key === w || e.artifact === w || e.key.endsWith(`/${w}`));
}

/** Remove an entry the listing showed (published or partial; a running fill is not ours to stop). */
export async function evictEntry(layout: CacheLayout, e: ListedEntry): Promise<boolean> {
  if (e.state === 'complete') await removeEntry(layout, e.id);
  else if (e.state === 'partial') await removePartial(layout, e.id);
  else return false;
  return true;
}

export type VerifyVerdict = { ok: true } | { ok: false; reason: string };

/** Re-read a published entry: its length and MD5 against its sidecar. */
export async function verifyEntry(layout: CacheLayout, id: string): Promise<VerifyVerdict> {
  const meta = await fsp.readFile(sidecarPath(layout, id), 'utf8').then(parseSidecar, () => null);
  if (!meta) return { ok: false, reason: 'sidecar missing or unreadable' };
  const md5 = createHash('md5');
  let length = 0;
  try {
    for await (const chunk of createReadStream(objectPath(layout, id), { highWaterMark: 256 * 1024 })) {
      md5.update(chunk as Buffer);
      length += (chunk as Buffer).length;
    }
  } catch (err) {
    return { ok: false, reason: `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
  if (length !== meta.size) return { ok: false, reason: `${length} bytes, ${meta.size} recorded` };
  const digest = md5.digest('hex');
  if (digest !== meta.md5) return { ok: false, reason: `MD5 ${digest}, ${meta.md5} recorded` };
  return { ok: true };
}
