import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration, parseDurationNs } from '../../lib/config/parse-duration';

// Cases from Go's time/time_test.go (parseDurationTests / parseDurationErrorTests), in ns.
const NS = 1n,
  US = 1000n,
  MS = 1_000_000n,
  S = 1_000_000_000n,
  M = 60n * S,
  H = 60n * M;

const valid: [string, bigint][] = [
  ['0', 0n],
  ['5s', 5n * S],
  ['30s', 30n * S],
  ['1478s', 1478n * S],
  ['-5s', -5n * S],
  ['+5s', 5n * S],
  ['-0', 0n],
  ['+0', 0n],
  ['5.0s', 5n * S],
  ['5.6s', 5n * S + 600n * MS],
  ['5.s', 5n * S],
  ['.5s', 500n * MS],
  ['1.0s', S],
  ['1.00s', S],
  ['1.004s', S + 4n * MS],
  ['1.0040s', S + 4n * MS],
  ['100.00100s', 100n * S + MS],
  ['10ns', 10n * NS],
  ['11us', 11n * US],
  ['12µs', 12n * US],
  ['12μs', 12n * US],
  ['13ms', 13n * MS],
  ['14s', 14n * S],
  ['15m', 15n * M],
  ['16h', 16n * H],
  ['3h30m', 3n * H + 30n * M],
  ['10.5s4m', 4n * M + 10n * S + 500n * MS],
  ['-2m3.4s', -(2n * M + 3n * S + 400n * MS)],
  ['1h2m3s4ms5us6ns', H + 2n * M + 3n * S + 4n * MS + 5n * US + 6n * NS],
  ['39h9m14.425s', 39n * H + 9n * M + 14n * S + 425n * MS],
  ['52763797000ns', 52763797000n],
  ['0.3333333333333333333h', 20n * M], // float maths, as Go
  ['9007199254740993ns', 9007199254740993n],
  ['9223372036854775807ns', 9223372036854775807n],
  ['9223372036854775.807us', 9223372036854775807n],
  ['-9223372036854775808ns', -9223372036854775808n],
  ['0.100000000000000000000h', 6n * M],
  ['0.830103483285477580700h', 49n * M + 48n * S + 372539827n],
];

for (const [input, ns] of valid) {
  test(`parseDurationNs(${JSON.stringify(input)}) = ${ns}ns`, () => {
    assert.equal(parseDurationNs(input), ns);
  });
}

const invalid: [string, RegExp][] = [
  ['', /^invalid duration ""$/],
  ['3', /^missing unit in duration "3"$/],
  ['-', /^invalid duration "-"$/],
  ['s', /^invalid duration "s"$/],
  ['.', /^invalid duration "\."$/],
  ['-.', /^invalid duration "-\."$/],
  ['.s', /^invalid duration "\.s"$/],
  ['+.s', /^invalid duration "\+\.s"$/],
  ['1d', /^unknown unit "d" in duration "1d"$/],
  ['\u00b5s', /^invalid duration/],
  ['9223372036854775810ns', /^invalid duration/],
  ['9223372036854775808ns', /^invalid duration/],
  ['-9223372036854775809ns', /^invalid duration/],
  ['3000000h', /^invalid duration/],
  [' 30s', /^invalid duration/],
  ['30 s', /^unknown unit " s"/],
  ['30m ', /^unknown unit "m "/],
];

for (const [input, message] of invalid) {
  test(`parseDurationNs(${JSON.stringify(input)}) throws ${message}`, () => {
    assert.throws(
      () => parseDurationNs(input),
      (err: Error) => message.test(err.message),
    );
  });
}

test('parseDuration returns milliseconds, fractional below one', () => {
  assert.equal(parseDuration('30m'), 1_800_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('1500us'), 1.5);
  assert.equal(parseDuration('-250ms'), -250);
  assert.throws(() => parseDuration('forever'), /invalid duration "forever"/);
});
