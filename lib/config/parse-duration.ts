// Go's time.ParseDuration, so that "30m", "1h30m", "1.5h", "300ms" and "0" mean what they
// mean to the commercial gateway (its config is read by Go). Returns milliseconds, possibly
// fractional ("1500us" → 1.5); throws on anything Go would refuse, with Go's wording.

const UNIT_NS: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  'µs': 1_000n, // U+00B5 micro sign
  'μs': 1_000n, // U+03BC Greek mu
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

const MAX_NS = (1n << 63n) - 1n;

export class DurationError extends Error {}

/** Nanoseconds as a BigInt, exactly as Go computes them (int64 range). */
export function parseDurationNs(text: string): bigint {
  const quoted = JSON.stringify(text);
  let s = text;
  let negative = false;
  if (s !== '' && (s[0] === '-' || s[0] === '+')) {
    negative = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0n;
  if (s === '') throw new DurationError(`invalid duration ${quoted}`);
  let total = 0n;
  while (s !== '') {
    // The number: digits, optionally a fraction; at least one digit on either side of the dot.
    const number = /^([0-9]*)(?:\.([0-9]*))?/.exec(s)!;
    const whole = number[1];
    const fraction = number[2] ?? '';
    if (whole === '' && fraction === '') throw new DurationError(`invalid duration ${quoted}`);
    s = s.slice(number[0].length);
    const unitMatch = /^[^0-9.]*/.exec(s)![0];
    if (unitMatch === '') throw new DurationError(`missing unit in duration ${quoted}`);
    const unit = UNIT_NS[unitMatch];
    if (unit === undefined) throw new DurationError(`unknown unit ${JSON.stringify(unitMatch)} in duration ${quoted}`);
    s = s.slice(unitMatch.length);
    const v = BigInt(whole === '' ? '0' : whole);
    if (v > MAX_NS / unit) throw new DurationError(`invalid duration ${quoted}`);
    let part = v * unit;
    if (fraction !== '') {
      // Go truncates the fractional part toward zero at nanosecond precision.
      part += (BigInt(fraction) * unit) / 10n ** BigInt(fraction.length);
    }
    total += part;
    if (total > MAX_NS) throw new DurationError(`invalid duration ${quoted}`);
  }
  return negative ? -total : total;
}

/** Milliseconds (may be fractional or negative, as Go allows). */
export function parseDuration(text: string): number {
  return Number(parseDurationNs(text)) / 1e6;
}
