import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseList } from '../../lib/config/parse-list';

const cases: [string, string[]][] = [
  ['s3.amazonaws.com', ['s3.amazonaws.com']],
  ['s3.amazonaws.com,s3.my-min.io', ['s3.amazonaws.com', 's3.my-min.io']],
  ['s3.amazonaws.com s3.my-min.io', ['s3.amazonaws.com', 's3.my-min.io']],
  ['s3.amazonaws.com, s3.my-min.io', ['s3.amazonaws.com', 's3.my-min.io']],
  ['  a \t b\nc  ', ['a', 'b', 'c']],
  ['a,,b,', ['a', 'b']],
  [',', []],
  ['["s3.amazonaws.com","r2.cloudflarestorage.com"]', ['s3.amazonaws.com', 'r2.cloudflarestorage.com']],
  [' [ "a" ] ', ['a']],
  ['[]', []],
];
for (const [input, expected] of cases) {
  test(`parseList(${JSON.stringify(input)})`, () => assert.deepEqual(parseList(input), expected));
}

test('a malformed JSON array is an error naming the value', () => {
  assert.throws(() => parseList('["a",'), /must be a list \(comma- or space-separated, or a JSON array of strings\), got "\[\\"a\\","/);
});
test('a JSON array of non-strings is an error', () => {
  assert.throws(() => parseList('[1,2]'), /must be a JSON array of strings, got "\[1,2\]"/);
});
