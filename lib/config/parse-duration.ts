// Go's time.ParseDuration, so that "30m", "1h30m", "1.5h", "300ms" and "0" mean what they
// mean to the commercial gateway (its config is read by Go). Returns milliseconds, possibly
// fractional ("1500us" → 1.5); throws on anything Go would refuse, with Go's wording.

const UNIT_NS: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n, // U+00B5 micro sign
  μs: 1_000n, // U+03BC Greek mu
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

const TWO_63 = 1n << 63n;

export class DurationError extends Error {}

/** Leading digits as Go's leadingFraction reads them: digits past int64 precision are dropped. */
function leadingFraction(digits: string): { f: bigint; scale: number } {
  let f = 0n;
  let scale = 1;
  for (const c of digits) {
    if (f > (TWO_63 - 1n) / 10n) break;
    const y = f * 10n + BigInt(c);
    if (y > TWO_63) break;
    f = y;
    scale *= 10;
  }
  return { f, scale };
}

/** Nanoseconds as a BigInt, exactly as Go computes them (int64 range, same float fraction maths). */
export function parseDurationNs(text: string): bigint {
  const invalid = () => new DurationError(`invalid duration ${JSON.stringify(text)}`);
  let s = text;
  let negative = false;
  if (s !== '' && (s[0] === '-' || s[0] === '+')) {
    negative = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0n;
  if (s === '') throw invalid();
  let total = 0n;
  while (s !== '') {
    // The number: digits, optionally a fraction; at least one digit on either side of the dot.
    const number = /^([0-9]*)(?:\.([0-9]*))?/.exec(s)!;
    const whole = number[1];
    const fraction = number[2] ?? '';
    if (whole === '' && fraction === '') throw invalid();
    s = s.slice(number[0].length);
    const unitText = /^[^0-9.]*/.exec(s)![0];
    if (unitText === '') throw new DurationError(`missing unit in duration ${JSON.stringify(text)}`);
    const unit = UNIT_NS[unitText];
    if (unit === undefined) {
      throw new DurationError(`unknown unit ${JSON.stringify(unitText)} in duration ${JSON.stringify(text)}`);
    }
    s = s.slice(unitText.length);
    const v = BigInt(whole === '' ? '0' : whole);
    if (v > TWO_63 / unit) throw invalid();
    let part = v * unit;
    const { f, scale } = leadingFraction(fraction);
    if (f > 0n) {
      // Go: uint64(float64(f) * (float64(unit) / scale)); float64 keeps fractions of hours exact.
      part += BigInt(Math.trunc(Number(f) * (Number(unit) / scale)));
      if (part > TWO_63) throw invalid();
    }
    total += part;
    if (total > TWO_63) throw invalid();
  }
  if (negative) return -total;
  if (total > TWO_63 - 1n) throw invalid();
  return total;
}

/** Milliseconds (may be fractional or negative, as Go allows). */
export function parseDuration(text: string): number {
  return Number(parseDurationNs(text)) / 1e6;
}
