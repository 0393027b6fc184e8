import { createHash, type Hash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import { partialPath, type CacheLayout } from './cache-layout';

// A fill stopped because its process is closing (a gateway shutdown, Ctrl-C of `cache prewarm`)
// keeps its bytes in partial/, where nothing serves them; the next fill of the same artifact
// takes them back and asks the origin for the rest with a Range request, checked against the
// ETag it had. A partial without an ETag could not be checked, so it is never kept.

export interface PartialMeta {
  version: 1;
  key: string;
  size: number;
  etag: string;
}

export interface Resume {
  offset: number;
  size: number;
  etag: string;
  /** MD5 of the bytes already there, to continue with the new ones. */
  md5: Hash;
}

function parseMeta(text: string): PartialMeta | null {
  try {
    const m = JSON.parse(text) as Partial<PartialMeta>;
    if (m.version !== 1 || typeof m.key !== 'string' || typeof m.etag !== 'string' || !Number.isSafeInteger(m.size)) return null;
    return m as PartialMeta;
  } catch {
    return null;
  }
}

/** Move a stopped fill's tmp file to partial/ (metadata first: bytes without it are never taken). */
export async function keepPartial(layout: CacheLayout, id: string, tmp: string, meta: PartialMeta): Promise<void> {
  const json = partialPath(layout, id, '.json');
  await fsp.writeFile(`${json}.new`, JSON.stringify(meta));
  await fsp.rename(`${json}.new`, json);
  await fsp.rename(tmp, partialPath(layout, id));
}

/** The partial bytes of this entry moved to `tmp` (ours now), or null when there are none worth resuming. */
export async function takePartial(layout: CacheLayout, id: string, key: string, tmp: string): Promise<Resume | null> {
  const json = partialPath(layout, id, '.json');
  const meta = await fsp.readFile(json, 'utf8').then(parseMeta, () => null);
  if (meta === null) return null;
  try {
    const size = (await fsp.stat(partialPath(layout, id))).size;
    if (meta.key !== key || size === 0 || size >= meta.size) return null;
    await fsp.rename(partialPath(layout, id), tmp);
    const md5 = createHash('md5');
    for await (const chunk of createReadStream(tmp)) md5.update(chunk as Buffer);
    return { offset: size, size: meta.size, etag: meta.etag, md5 };
  } catch {
    return null;
  } finally {
    await removePartial(layout, id);
  }
}

export async function removePartial(layout: CacheLayout, id: string): Promise<void> {
  await fsp.rm(partialPath(layout, id, '.json'), { force: true });
  await fsp.rm(partialPath(layout, id), { force: true });
}

export interface PartialEntry extends PartialMeta {
  id: string;
  written: number;
  mtimeMs: number;
}

/** Every partial fill on disk, for `cache list`. */
export async function listPartials(layout: CacheLayout): Promise<PartialEntry[]> {
  const out: PartialEntry[] = [];
  for (const name of await fsp.readdir(layout.partial).catch(() => [] as string[])) {
    const m = /^([0-9a-f]{64})\.json$/.exec(name);
    if (!m) continue;
    const meta = await fsp.readFile(partialPath(layout, m[1]!, '.json'), 'utf8').then(parseMeta, () => null);
    const st = await fsp.stat(partialPath(layout, m[1]!)).catch(() => null);
    if (meta && st) out.push({ ...meta, id: m[1]!, written: st.size, mtimeMs: st.mtimeMs });
  }
  return out;
}
