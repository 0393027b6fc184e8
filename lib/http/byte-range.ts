// Range request header parsing (RFC 9110 §14.1-14.4), pure: the caller knows the size.
// Only a single byte range is served; several ranges are answered with the whole
// representation (200), as `send` does, since no Mender client asks for multipart.
// Syntax errors are ignored per RFC 9110 §14.2 ("a server MAY ignore the Range header"):
// callers treat 'malformed' like 'none' and may log it.

export type ByteRange =
  | { kind: 'none' }
  | { kind: 'single'; start: number; end: number }
  | { kind: 'unsatisfiable' }
  | { kind: 'malformed' };

const NONE: ByteRange = { kind: 'none' };
const MALFORMED: ByteRange = { kind: 'malformed' };
const UNSATISFIABLE: ByteRange = { kind: 'unsatisfiable' };

// Digits only, and small enough to stay exact in a double.
function parsePosition(text: string): number | null {
  if (!/^[0-9]{1,16}$/.test(text)) return null;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : null;
}

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
  const dash = spec.indexOf('-');
  if (dash < 0) return MALFORMED;
  const first = spec.slice(0, dash);
  const last = spec.slice(dash + 1);

  if (first === '') {
    // bytes=-N: the last N bytes.
    const suffix = parsePosition(last);
    if (suffix === null) return MALFORMED;
    if (suffix === 0 || size === 0) return UNSATISFIABLE;
    return { kind: 'single', start: Math.max(0, size - suffix), end: size - 1 };
  }

  const start = parsePosition(first);
  if (start === null) return MALFORMED;
  let end: number;
  if (last === '') end = size - 1;
  else {
    const parsed = parsePosition(last);
    if (parsed === null || parsed < start) return MALFORMED;
    end = Math.min(parsed, size - 1);
  }
  if (start >= size) return UNSATISFIABLE;
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
