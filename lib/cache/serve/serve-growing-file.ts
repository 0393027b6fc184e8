import { promises as fsp } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FillProgress } from '../fill/fill-progress';
import { planResponse } from '../../artifacts/response-plan';
import { ClientGone, sendFileBytes } from './send-file-bytes';
import type { ReadSizer } from './read-size';
import { GatewayError } from '../../http/gateway-error';

// A device that asks while the fill runs: headers as soon as the origin's length is known,
// then the bytes as they land in the tmp file, from 0 or its Range start, at its own pace
// (it reads the file, it does not share a pipe). If the fill fails after the response has
// started, the connection is destroyed so the device sees a broken download it resumes,
// never a clean short body (Varnish c00062, peers-and-performance §5); the fill logs its own
// failure. A 416 and a device that leaves (ClientGone) are thrown on for the route to answer.

export async function serveGrowingFile(req: IncomingMessage, res: ServerResponse, p: FillProgress, sizer: ReadSizer): Promise<void> {
  const plan = planResponse(req.headers, { size: p.size, etag: p.etag, lastModified: p.lastModified });
  const fh = await openFollowed(p);
  try {
    res.writeHead(plan.status, plan.headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    await sendFileBytes(
      fh,
      res,
      plan.start,
      plan.end + 1,
      { available: () => p.available(), failure: () => (p.state === 'failed' ? p.error : null), changed: () => p.changed() },
      sizer,
    );
    res.end();
  } catch (err) {
    if (err instanceof ClientGone) throw err;
    res.destroy();
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** The tmp file, or the object it was just renamed to; an open fd survives the rename. */
async function openFollowed(p: FillProgress): Promise<fsp.FileHandle> {
  for (const file of [p.path, p.finalPath]) {
    try {
      return await fsp.open(file, 'r');
    } catch {
      // renamed or removed meanwhile: try the next name
    }
  }
  throw p.error ?? new GatewayError('SERVICE_UNAVAILABLE', 'artifact cache entry vanished, try again');
}
