import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { GatewayError } from '../http/gateway-error';
import { contentRange, requestedRange, unsatisfiedRange, type Validators } from '../http/byte-range';

// Status and headers of every artifact response (from the origin, a cached file or a growing
// fill), pure, so the three paths answer alike: exact Content-Length, never compressed, the
// representation's ETag and Last-Modified so a client can resume with If-Range. A malformed
// or multi-range header, or an If-Range that does not match, gets the whole artifact (RFC 9110
// §13.1.5, §14.2). The Mender client's resumer requires Content-Range to match exactly what it
// asked and the total to equal the first response's length (mender-gateway.md §3.2).

export interface Representation extends Validators {
  size: number;
  /** The origin's, when it sent them; the cache serves application/octet-stream. */
  contentType?: string;
  contentDisposition?: string;
}

export interface ResponsePlan {
  status: 200 | 206;
  headers: OutgoingHttpHeaders;
  /** Inclusive first and last byte; last < first for an empty artifact. */
  start: number;
  end: number;
}

/** The plan for this request, or the 416 (with `Content-Range: bytes *\/size`) thrown for the route to answer. */
export function planResponse(request: IncomingHttpHeaders, rep: Representation): ResponsePlan {
  const range = requestedRange(request, rep.size, rep);
  if (range.kind === 'unsatisfiable')
    throw new GatewayError('RANGE_NOT_SATISFIABLE', 'requested range not satisfiable', {
      headers: { 'Content-Range': unsatisfiedRange(rep.size) },
    });
  const headers: OutgoingHttpHeaders = {
    'Content-Type': rep.contentType ?? 'application/octet-stream',
    'Accept-Ranges': 'bytes',
    // No proxy between us and the device may compress it: the client needs the length.
    'Cache-Control': 'no-transform',
  };
  if (rep.etag !== null) headers.ETag = rep.etag;
  if (rep.lastModified !== null) headers['Last-Modified'] = rep.lastModified;
  if (rep.contentDisposition !== undefined) headers['Content-Disposition'] = rep.contentDisposition;
  if (range.kind === 'single') {
    headers['Content-Length'] = range.end - range.start + 1;
    headers['Content-Range'] = contentRange(range.start, range.end, rep.size);
    return { status: 206, headers, start: range.start, end: range.end };
  }
  headers['Content-Length'] = rep.size;
  return { status: 200, headers, start: 0, end: rep.size - 1 };
}
