import { promises as fsp } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { objectPath, type CacheLayout } from '../store/cache-layout';
import type { CacheEntry, CacheIndex } from '../store/cache-index';
import { planResponse } from '../../artifacts/response-plan';
import { ClientGone, completeFile, sendFileBytes } from './send-file-bytes';
import type { ReadSizer } from './read-size';

// A published entry, from disk: GET or HEAD, Range (If-Range checked) → 206, unsatisfiable →
// 416 thrown for the route to answer. The entry counts as read while a device is on it, so
// eviction leaves it alone. Returns false when the entry is gone from disk (evicted by another
// process): the caller treats that as a miss. A device that leaves mid-way is ClientGone,
// thrown on for the route to count (499).

export async function serveCachedFile(
  req: IncomingMessage,
  res: ServerResponse,
  entry: CacheEntry,
  deps: { layout: CacheLayout; index: CacheIndex; sizer: ReadSizer },
): Promise<boolean> {
  const plan = planResponse(req.headers, { size: entry.size, etag: entry.etag, lastModified: entry.lastModified ?? null });
  entry.readers++;
  let fh: fsp.FileHandle | null = null;
  try {
    try {
      fh = await fsp.open(objectPath(deps.layout, entry.id), 'r');
      if ((await fh.stat()).size !== entry.size) return false;
    } catch {
      return false;
    }
    deps.index.touch(entry);
    res.writeHead(plan.status, plan.headers);
    if (req.method === 'HEAD') {
      res.end();
      return true;
    }
    await sendFileBytes(fh, res, plan.start, plan.end + 1, completeFile(entry.size), deps.sizer);
    res.end();
  } catch (err) {
    if (!res.headersSent) throw err;
    if (err instanceof ClientGone) throw err;
    // Already started: a broken connection tells the device to resume; a short 200 would not.
    res.destroy();
  } finally {
    entry.readers--;
    await fh?.close().catch(() => undefined);
  }
  return true;
}
