import type { OutgoingHttpHeaders } from 'node:http';
import { contentRange, parseByteRange, unsatisfiedRange } from '../../http/byte-range';

// Status and headers for serving an artifact of known size, pure. Exact Content-Length,
// never compressed; a malformed or multi-range header gets the whole artifact (RFC 9110
// §14.2). The Mender client's resumer requires Content-Range to match exactly what it
// asked and the total to equal the first response's length (mender-gateway.md §3.2).

export type ResponsePlan =
  | { status: 200 | 206; headers: OutgoingHttpHeaders; start: number; end: number }
  | { status: 416; headers: Record<string, string> };

export function planResponse(rangeHeader: string | undefined, size: number, etag: string | null): ResponsePlan {
  const range = parseByteRange(rangeHeader, size);
  if (range.kind === 'unsatisfiable') return { status: 416, headers: { 'Content-Range': unsatisfiedRange(size) } };
  const headers: OutgoingHttpHeaders = { 'Content-Type': 'application/octet-stream', 'Accept-Ranges': 'bytes' };
  if (etag !== null) headers.ETag = etag;
  if (range.kind === 'single') {
    headers['Content-Length'] = range.end - range.start + 1;
    headers['Content-Range'] = contentRange(range.start, range.end, size);
    return { status: 206, headers, start: range.start, end: range.end + 1 };
  }
  headers['Content-Length'] = size;
  return { status: 200, headers, start: 0, end: size };
}
