import parseRange from 'range-parser';

// Range and If-Range request headers (RFC 9110 §13.1.5, §14.1-14.4), pure: the one place they are
// read. parseByteRange knows the size; wantedRange is what an origin is asked for before it is known.
// The arithmetic (suffix ranges, open ranges, clamping the last position to the size, what is
// unsatisfiable) is `range-parser`, the parser `send` and Express use. Our own rules sit around it:
// - Only a single byte range is served; several ranges are answered with the whole representation
//   (200), as `send` does, since no Mender client asks for multipart.
// - Syntax errors are ignored per RFC 9110 §14.2 ("a server MAY ignore the Range header"): callers
//   treat 'malformed' like 'none' and may log it. range-parser is more lenient than the grammar
//   (it trims blanks around positions, reads a reversed range or a position past 2^53 as merely
//   unsatisfiable), so the range-spec is checked against RFC 9110's ABNF first.
// - An empty representation satisfies no range, a suffix range included (range-parser would
//   answer `bytes=-5` on it with an empty list).

export type ByteRange =
  | { kind: 'none' }
  | { kind: 'single'; start: number; end: number }
  | { kind: 'unsatisfiable' }
  | { kind: 'malformed' };

const NONE: ByteRange = { kind: 'none' };
const MALFORMED: ByteRange = { kind: 'malformed' };
const UNSATISFIABLE: ByteRange = { kind: 'unsatisfiable' };

// int-range = first-pos "-" [ last-pos ] / suffix-range = "-" suffix-length (RFC 9110 §14.1.1),
// positions 1*DIGIT; we also want them exact in a double.
const RANGE_SPEC = /^([0-9]*)-([0-9]*)$/;
const exact = (digits: string): boolean => digits === '' || (digits.length <= 16 && Number.isSafeInteger(Number(digits)));

/** The range-spec's two positions as written (either may be empty), or why there is none to honour. */
function readSpec(header: string | undefined): { first: string; last: string } | ByteRange {
  if (header === undefined) return NONE;
  const value = header.trim();
  if (value === '') return NONE;
  const eq = value.indexOf('=');
  if (eq < 0) return MALFORMED;
  // Another range unit is not ours to honour: serve the whole thing.
  if (value.slice(0, eq).trim().toLowerCase() !== 'bytes') return NONE;
  const spec = value.slice(eq + 1).trim();
  if (spec.includes(',')) return NONE;
  const m = RANGE_SPEC.exec(spec);
  if (!m || (m[1] === '' && m[2] === '') || !exact(m[1]!) || !exact(m[2]!)) return MALFORMED;
  if (m[1] !== '' && m[2] !== '' && Number(m[2]) < Number(m[1])) return MALFORMED;
  return { first: m[1]!, last: m[2]! };
}

export function parseByteRange(header: string | undefined, size: number): ByteRange {
  const spec = readSpec(header);
  if (!('first' in spec)) return spec;
  if (size === 0) return UNSATISFIABLE;

  // A suffix longer than the representation means all of it (RFC 9110 §14.1.1); range-parser 1.x
  // would compute a negative start and call it unsatisfiable, so it is given the size instead.
  const suffixTooLong = spec.first === '' && Number(spec.last) > size;
  const ranges = parseRange(size, suffixTooLong ? `bytes=-${size}` : `bytes=${spec.first}-${spec.last}`);
  if (ranges === -2) return MALFORMED; // not reached after the check above; kept for safety
  if (ranges === -1 || ranges.length !== 1) return UNSATISFIABLE;
  const [{ start, end }] = ranges;
  return { kind: 'single', start, end };
}

/** What to ask an origin for before the size is known: inclusive positions (no end = to the end), or the last `suffix` bytes. */
export type WantedRange = { start: number; end?: number } | { suffix: number };

/** The device's single range as it wrote it, for the origin; undefined when it gets the whole representation. */
export function wantedRange(header: string | undefined): WantedRange | undefined {
  const spec = readSpec(header);
  if (!('first' in spec)) return undefined;
  if (spec.first === '') return { suffix: Number(spec.last) };
  return spec.last === '' ? { start: Number(spec.first) } : { start: Number(spec.first), end: Number(spec.last) };
}

/** The validators of a representation, as sent in ETag and Last-Modified (null when there is none). */
export interface Validators {
  etag: string | null;
  lastModified: string | null;
}

/**
 * If-Range (RFC 9110 §13.1.5): true when the Range may be applied. Absent, it always may; an
 * entity-tag must match the current ETag by strong comparison (a weak tag on either side never
 * matches); an HTTP-date must equal Last-Modified exactly. Anything else, or a validator the
 * representation does not have, is a mismatch: the Range is ignored and the whole is sent.
 */
export function ifRangeHolds(ifRange: string | string[] | undefined, current: Validators): boolean {
  if (ifRange === undefined) return true;
  if (Array.isArray(ifRange)) return false; // sent twice: no one validator to compare
  const value = ifRange.trim();
  // "A valid entity-tag can be distinguished from a valid HTTP-date by examining the first three characters for a DQUOTE."
  if (value.slice(0, 3).includes('"')) {
    return !value.startsWith('W/') && current.etag !== null && !current.etag.startsWith('W/') && value === current.etag.trim();
  }
  if (current.lastModified === null) return false;
  const asked = Date.parse(value);
  return !Number.isNaN(asked) && asked === Date.parse(current.lastModified);
}

/** The Range of a request as it applies to a representation of `size` bytes, If-Range evaluated first. */
export function requestedRange(headers: { range?: string; 'if-range'?: string | string[] }, size: number, current: Validators): ByteRange {
  if (headers.range === undefined || !ifRangeHolds(headers['if-range'], current)) return NONE;
  return parseByteRange(headers.range, size);
}

/** Content-Range value of a 206: `bytes 0-499/1234`. */
export function contentRange(start: number, end: number, size: number): string {
  return `bytes ${start}-${end}/${size}`;
}

/** Content-Range value of a 416: `bytes *\/1234`. */
export function unsatisfiedRange(size: number): string {
  return `bytes */${size}`;
}

/** A 206's Content-Range value `bytes first-last/complete`, or null when it is not one (an unknown size `*` included). */
export function parseContentRange(value: string | undefined): { start: number; end: number; size: number } | null {
  const m = /^bytes (\d{1,16})-(\d{1,16})\/(\d{1,16})$/.exec((value ?? '').trim());
  if (!m) return null;
  const [start, end, size] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return start <= end && end < size ? { start, end, size } : null;
}

/** The size a 416's Content-Range `bytes *\/size` gives, or null. */
export function parseUnsatisfiedRange(value: string | undefined): number | null {
  const m = /^bytes \*\/(\d{1,16})$/.exec((value ?? '').trim());
  return m ? Number(m[1]) : null;
}
