import { promises as fsp } from 'node:fs';
import { objectPath } from '../store/cache-layout';
import type { FillContext } from './fill-context';
import { readAnnouncement } from '../store/fill-lock';
import type { FillProgress } from './fill-progress';

// Another process (a sibling worker) holds the fill lock: instead of waiting for
// it to publish, this process's devices follow its tmp file as it grows. The holder
// announces the tmp path, length and ETag in its owner record once the origin answered;
// here the file's size is polled into `written`. The last byte still waits for the
// holder's publish (its sidecar is the proof the bytes were verified), exactly as for a
// fill of our own; an opened fd survives the holder's rename.

/** One look at the holder's fill; the caller loops while the lock stays held. */
export async function followOtherFill(p: FillProgress, ctx: FillContext): Promise<void> {
  if (p.state === 'starting') {
    const fill = await readAnnouncement(ctx.layout, p.id);
    if (!fill) return;
    try {
      await fsp.access(fill.tmp);
    } catch {
      return; // renamed or removed already: the publish (or the next holder) comes next
    }
    p.begin(fill.size, fill.etag, fill.tmp, objectPath(ctx.layout, p.id), fill.lastModified ?? null);
    p.followed = true;
  }
  if (p.state !== 'growing') return;
  let size: number;
  try {
    size = (await fsp.stat(p.path)).size;
  } catch {
    return; // renamed into objects/ (publish under way) or removed (the holder failed)
  }
  const grown = Math.min(size, p.size) - p.written;
  if (grown > 0) p.advance(grown);
}

/** How often a followed fill is looked at: often enough that devices barely lag the holder. */
export const FOLLOW_POLL_MS = 50;
