import parseRange from 'range-parser';

// Range request header (RFC 9110 §14.1-14.4; RFC 7233 §2-4 before it), pure: the caller knows the size.
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

export function parseByteRange(header: string | undefined, size: number): ByteRange {
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
  if (!m || (m[1] === '' && m[2] === '') || !exact(m[1]) || !exact(m[2])) return MALFORMED;
  if (m[1] !== '' && m[2] !== '' && Number(m[2]) < Number(m[1])) return MALFORMED;
  if (size === 0) return UNSATISFIABLE;

  // A suffix longer than the representation means all of it (RFC 9110 §14.1.1); range-parser 1.x
  // would compute a negative start and call it unsatisfiable, so it is given the size instead.
  const suffixTooLong = m[1] === '' && Number(m[2]) > size;
  const ranges = parseRange(size, suffixTooLong ? `bytes=-${size}` : `bytes=${spec}`);
  if (ranges === -2) return MALFORMED; // not reached after the check above; kept for safety
  if (ranges === -1 || ranges.length !== 1) return UNSATISFIABLE;
  const [{ start, end }] = ranges;
  return { kind: 'single', start, end };
}

/** Content-Range value of a 206: `bytes 0-499/1234`. */
export function contentRange(start: number, end: number, size: number): string {
  return `bytes ${start}-${end}/${size}`;
}

/** Content-Range value of a 416: `bytes *\/1234`. */
export function unsatisfiedRange(size: number): string {
  return `bytes */${size}`;
}
