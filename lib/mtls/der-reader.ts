// A minimal DER reader for the CRL parser (plus RFC 5280 Time). Definite lengths only and every
// element bounded by its parent, so truncated or hostile input fails with a message, never an overread.

export interface Tlv {
  tag: number;
  /** bytes.subarray(start, end) is the whole element, as a signature covers it */
  start: number;
  contentStart: number;
  end: number;
}

/** Malformed DER; the message names the byte offset. */
export class DerError extends Error {}

export function readTlv(bytes: Buffer, offset: number, limit: number): Tlv {
  if (offset + 2 > limit) throw new DerError(`truncated at byte ${offset}`);
  const tag = bytes[offset];
  if ((tag & 0x1f) === 0x1f) throw new DerError(`multi-byte tag at byte ${offset}`);
  let length = bytes[offset + 1];
  let pos = offset + 2;
  if (length === 0x80) throw new DerError(`indefinite length at byte ${offset}`);
  if (length > 0x80) {
    const n = length & 0x7f;
    // 4 length bytes already allow 4 GB: more is never a CRL.
    if (n > 4) throw new DerError(`length of ${n} bytes at byte ${offset}`);
    if (pos + n > limit) throw new DerError(`truncated at byte ${offset}`);
    if (bytes[pos] === 0) throw new DerError(`non-minimal length at byte ${offset}`);
    length = 0;
    for (const end = pos + n; pos < end; pos++) length = length * 256 + bytes[pos];
    if (length < 0x80) throw new DerError(`non-minimal length at byte ${offset}`);
  }
  if (pos + length > limit) throw new DerError(`element at byte ${offset} runs past its parent (truncated?)`);
  return { tag, start: offset, contentStart: pos, end: pos + length };
}

/** The elements inside a constructed element (SEQUENCE, SET, [n] EXPLICIT). */
export function children(bytes: Buffer, parent: Tlv): Tlv[] {
  if ((parent.tag & 0x20) === 0) throw new DerError(`element at byte ${parent.start} is not constructed`);
  const out: Tlv[] = [];
  for (let pos = parent.contentStart; pos < parent.end; ) {
    const tlv = readTlv(bytes, pos, parent.end);
    out.push(tlv);
    pos = tlv.end;
  }
  return out;
}

export function content(bytes: Buffer, tlv: Tlv): Buffer {
  return bytes.subarray(tlv.contentStart, tlv.end);
}

/** An OBJECT IDENTIFIER's content as dotted text, e.g. 1.2.840.10045.4.3.2. */
export function decodeOid(value: Buffer): string {
  const arcs: number[] = [];
  let arc = 0;
  for (const [i, byte] of value.entries()) {
    arc = arc * 128 + (byte & 0x7f);
    if (byte & 0x80) {
      if (i === value.length - 1) throw new DerError('truncated OBJECT IDENTIFIER');
      continue;
    }
    if (arcs.length === 0) arcs.push(arc < 80 ? Math.floor(arc / 40) : 2, arc < 80 ? arc % 40 : arc - 80);
    else arcs.push(arc);
    arc = 0;
  }
  if (arcs.length === 0) throw new DerError('empty OBJECT IDENTIFIER');
  return arcs.join('.');
}

const UTC_TIME = 0x17, GENERALIZED_TIME = 0x18;

export function isTime(tlv: Tlv | undefined): boolean {
  return tlv?.tag === UTC_TIME || tlv?.tag === GENERALIZED_TIME;
}

/** RFC 5280 Time: UTCTime (YY 50-99 is 19YY) or GeneralizedTime, whole seconds, Z. */
export function parseTime(der: Buffer, tlv: Tlv | undefined, what: string): Date {
  if (!tlv || !isTime(tlv)) return fail(`${what} is missing`);
  const text = content(der, tlv).toString('latin1');
  const utc = tlv.tag === UTC_TIME;
  const m = (utc ? /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/ : /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/).exec(text);
  if (!m) return fail(`${what} is not a valid time: ${JSON.stringify(text.slice(0, 20))}`);
  const [year, month, day, hour, minute, second] = m.slice(1).map(Number);
  const fullYear = utc ? year + (year >= 50 ? 1900 : 2000) : year;
  const date = new Date(Date.UTC(fullYear, month - 1, day, hour, minute, second));
  if (date.getUTCFullYear() !== fullYear || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) {
    return fail(`${what} is not a valid time: ${JSON.stringify(text)}`);
  }
  return date;
}

export function expect(tlv: Tlv | undefined, tag: number, what: string): Tlv {
  if (!tlv) return fail(`${what} is missing`);
  if (tlv.tag !== tag) fail(`${what}: expected tag 0x${tag.toString(16)} at byte ${tlv.start}, found 0x${tlv.tag.toString(16)}`);
  return tlv;
}

export function fail(message: string): never {
  throw new DerError(message);
}
