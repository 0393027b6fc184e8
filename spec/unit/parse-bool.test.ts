import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseBool } from '../../lib/config/parse-bool';

// Go's strconv.ParseBool accepts exactly these and nothing else (no trimming, no yes/no/on/off).
const cases: [string, boolean][] = [
  ['1', true],
  ['t', true],
  ['T', true],
  ['TRUE', true],
  ['true', true],
  ['True', true],
  ['0', false],
  ['f', false],
  ['F', false],
  ['FALSE', false],
  ['false', false],
  ['False', false],
];
for (const [input, expected] of cases) {
  test(`parseBool(${JSON.stringify(input)}) = ${expected}`, () => assert.equal(parseBool(input), expected));
}

for (const input of ['', 'yes', 'no', 'on', 'off', 'tRUE', 'fAlse', ' true', 'true ', '2', 'y', 'enabled']) {
  test(`parseBool(${JSON.stringify(input)}) throws naming the value`, () => {
    assert.throws(
      () => parseBool(input),
      (err: Error) => {
        assert.equal(
          err.message,
          `must be a boolean (1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False), got ${JSON.stringify(input)}`,
        );
        return true;
      },
    );
  });
}
