import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestContext } from '../http/route';

/**
 * Serves a verified artifact link: GET or HEAD (with Range) for the artifact at `origin`
 * (the presigned storage URL). Two implementations: straight from the origin (cache off)
 * and through the on-disk cache (cache on).
 */
export interface ArtifactServer {
  serve(req: IncomingMessage, res: ServerResponse, origin: URL, ctx: RequestContext): Promise<void>;
  /** Start fetching an artifact before any device asks for it (cache only). */
  prewarm?(origin: URL): void;
  close?(): Promise<void>;
}
