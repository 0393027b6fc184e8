import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  contentRange,
  ifRangeHolds,
  parseByteRange,
  parseContentRange,
  parseUnsatisfiedRange,
  requestedRange,
  unsatisfiedRange,
  wantedRange,
  type ByteRange,
} from '../../lib/http/byte-range';

const SIZE = 1000;

const cases: [header: string | undefined, size: number, expected: ByteRange][] = [
  [undefined, SIZE, { kind: 'none' }],
  ['', SIZE, { kind: 'none' }],
  ['   ', SIZE, { kind: 'none' }],
  // open-ended: what the mender client sends on resume
  ['bytes=0-', SIZE, { kind: 'single', start: 0, end: 999 }],
  ['bytes=500-', SIZE, { kind: 'single', start: 500, end: 999 }],
  ['bytes=999-', SIZE, { kind: 'single', start: 999, end: 999 }],
  ['bytes=1000-', SIZE, { kind: 'unsatisfiable' }],
  ['bytes=5000-', SIZE, { kind: 'unsatisfiable' }],
  // closed
  ['bytes=0-0', SIZE, { kind: 'single', start: 0, end: 0 }],
  ['bytes=10-19', SIZE, { kind: 'single', start: 10, end: 19 }],
  ['bytes=10-5000', SIZE, { kind: 'single', start: 10, end: 999 }],
  ['bytes=999-999', SIZE, { kind: 'single', start: 999, end: 999 }],
  ['bytes=1000-1001', SIZE, { kind: 'unsatisfiable' }],
  ['bytes=20-10', SIZE, { kind: 'malformed' }],
  // suffix
  ['bytes=-1', SIZE, { kind: 'single', start: 999, end: 999 }],
  ['bytes=-100', SIZE, { kind: 'single', start: 900, end: 999 }],
  ['bytes=-5000', SIZE, { kind: 'single', start: 0, end: 999 }],
  ['bytes=-0', SIZE, { kind: 'unsatisfiable' }],
  // unit and whitespace spelling
  ['BYTES=5-9', SIZE, { kind: 'single', start: 5, end: 9 }],
  [' bytes=5-9 ', SIZE, { kind: 'single', start: 5, end: 9 }],
  ['bytes= 5-9', SIZE, { kind: 'single', start: 5, end: 9 }],
  ['items=0-5', SIZE, { kind: 'none' }],
  // several ranges: whole representation
  ['bytes=0-1,5-6', SIZE, { kind: 'none' }],
  ['bytes=0-1, 2000-', SIZE, { kind: 'none' }],
  // garbage and overflow
  ['bytes', SIZE, { kind: 'malformed' }],
  ['bytes=', SIZE, { kind: 'malformed' }],
  ['bytes=-', SIZE, { kind: 'malformed' }],
  ['bytes=abc-', SIZE, { kind: 'malformed' }],
  ['bytes=1-x', SIZE, { kind: 'malformed' }],
  ['bytes=+1-2', SIZE, { kind: 'malformed' }],
  ['bytes=1.5-2', SIZE, { kind: 'malformed' }],
  ['bytes=0x10-', SIZE, { kind: 'malformed' }],
  ['bytes=1e3-', SIZE, { kind: 'malformed' }],
  ['bytes=1 -2', SIZE, { kind: 'malformed' }],
  ['bytes=--5', SIZE, { kind: 'malformed' }],
  ['bytes=99999999999999999999-', SIZE, { kind: 'malformed' }],
  ['bytes=0-99999999999999999999', SIZE, { kind: 'malformed' }],
  ['bytes=-99999999999999999999', SIZE, { kind: 'malformed' }],
  // empty representation: nothing is satisfiable
  ['bytes=0-', 0, { kind: 'unsatisfiable' }],
  ['bytes=-5', 0, { kind: 'unsatisfiable' }],
  ['bytes=0-0', 0, { kind: 'unsatisfiable' }],
  // where range-parser alone would answer otherwise, the project's rule holds
  ['bytes=0-0,5-9', SIZE, { kind: 'none' }], // several ranges: range-parser returns both
  ['bytes=0-1,', SIZE, { kind: 'none' }], // an empty list element: range-parser reads one range
  ['bytes=-5,0-1', SIZE, { kind: 'none' }],
  ['bytes=5-2', SIZE, { kind: 'malformed' }], // range-parser: unsatisfiable (-1)
  ['bytes=5 - 9', SIZE, { kind: 'malformed' }], // range-parser trims around positions
  ['bytes= -5', SIZE, { kind: 'single', start: 995, end: 999 }],
  ['bytes=\t5-9\t', SIZE, { kind: 'single', start: 5, end: 9 }],
  ['bytes =5-9', SIZE, { kind: 'single', start: 5, end: 9 }],
  ['bytes=5', SIZE, { kind: 'malformed' }],
  ['bytes=0--1', SIZE, { kind: 'malformed' }],
  ['bytes=9007199254740992-', SIZE, { kind: 'malformed' }], // 2^53: range-parser says unsatisfiable
  ['bytes=0-9007199254740992', SIZE, { kind: 'malformed' }], // range-parser clamps it to 0-999
  ['bytes=-9007199254740992', SIZE, { kind: 'malformed' }],
  ['bytes=0-9007199254740991', SIZE, { kind: 'single', start: 0, end: 999 }], // 2^53-1 is still exact
  ['items=0-1', SIZE, { kind: 'none' }], // range-parser returns it with type 'items'
  ['items=garbage', SIZE, { kind: 'none' }],
  ['items', SIZE, { kind: 'malformed' }],
  ['bytes=0-1', Number.MAX_SAFE_INTEGER, { kind: 'single', start: 0, end: 1 }], // as serve-from-origin asks
  // large artifacts stay exact
  ['bytes=4294967296-', 8589934592, { kind: 'single', start: 4294967296, end: 8589934591 }],
];

for (const [header, size, expected] of cases) {
  test(`parseByteRange(${JSON.stringify(header)}, ${size}) → ${JSON.stringify(expected)}`, () => {
    assert.deepEqual(parseByteRange(header, size), expected);
  });
}

test('contentRange and unsatisfiedRange format RFC 9110 §14.4 values', () => {
  assert.equal(contentRange(0, 499, 1234), 'bytes 0-499/1234');
  assert.equal(contentRange(500000, 2059775, 2059776), 'bytes 500000-2059775/2059776');
  assert.equal(unsatisfiedRange(1234), 'bytes */1234');
});

test("wantedRange: the device's single range as written, for an origin whose size is not known yet", () => {
  // Mender client 3.4 resumes with bytes=N-, 5.1 with bytes=N-(L-1) (docs/clients.md).
  assert.deepEqual(wantedRange('bytes=500000-'), { start: 500000 });
  assert.deepEqual(wantedRange('bytes=385815-1060351'), { start: 385815, end: 1060351 });
  assert.deepEqual(wantedRange('bytes=-500'), { suffix: 500 });
  assert.deepEqual(wantedRange(' BYTES = 5-9 '), { start: 5, end: 9 });
  // Whatever parseByteRange would not honour is not asked of the origin either: the whole comes.
  for (const whole of [undefined, '', 'bytes=9-5', 'bytes=1-2,4-5', 'items=0-1', 'bytes=abc-', 'bytes=99999999999999999999-'])
    assert.equal(wantedRange(whole), undefined, String(whole));
});

test('parseContentRange reads a 206 Content-Range and refuses anything else', () => {
  assert.deepEqual(parseContentRange('bytes 0-9/10'), { start: 0, end: 9, size: 10 });
  for (const bad of [undefined, 'bytes 5-4/10', 'bytes 0-10/10', 'bytes */10', 'bytes 0-1/*', 'items 0-1/2'])
    assert.equal(parseContentRange(bad), null, String(bad));
  assert.equal(parseUnsatisfiedRange('bytes */1234'), 1234);
  for (const bad of [undefined, 'bytes 0-1/2', 'bytes */', 'bytes */-1']) assert.equal(parseUnsatisfiedRange(bad), null, String(bad));
});

const ETAG = '"5d41402abc4b2a76b9719d911017c592"';
const LAST_MODIFIED = 'Tue, 01 Dec 2026 10:00:00 GMT';
const current = { etag: ETAG, lastModified: LAST_MODIFIED };

test('ifRangeHolds: RFC 9110 §13.1.5, strong ETag or exact Last-Modified', () => {
  assert.equal(ifRangeHolds(undefined, current), true, 'no If-Range: the Range applies');
  assert.equal(ifRangeHolds(ETAG, current), true);
  assert.equal(ifRangeHolds(` ${ETAG} `, current), true);
  assert.equal(ifRangeHolds('"other"', current), false);
  assert.equal(ifRangeHolds(`W/${ETAG}`, current), false, 'a weak tag never matches (strong comparison)');
  assert.equal(ifRangeHolds(ETAG, { ...current, etag: `W/${ETAG}` }), false);
  assert.equal(ifRangeHolds(ETAG, { ...current, etag: null }), false, 'no ETag to compare with');
  assert.equal(ifRangeHolds(LAST_MODIFIED, current), true);
  assert.equal(ifRangeHolds('Tue, 01 Dec 2026 10:00:01 GMT', current), false, 'a date must match exactly');
  assert.equal(ifRangeHolds(LAST_MODIFIED, { ...current, lastModified: null }), false);
  assert.equal(ifRangeHolds('not a date', current), false);
  assert.equal(ifRangeHolds([ETAG, ETAG], current), false, 'sent twice');
});

test('requestedRange applies If-Range before the Range, and ignores an If-Range without Range', () => {
  assert.deepEqual(requestedRange({ range: 'bytes=10-19', 'if-range': ETAG }, SIZE, current), { kind: 'single', start: 10, end: 19 });
  assert.deepEqual(requestedRange({ range: 'bytes=10-19', 'if-range': '"stale"' }, SIZE, current), { kind: 'none' });
  // Even an unsatisfiable Range gives way to the whole representation when If-Range does not match.
  assert.deepEqual(requestedRange({ range: 'bytes=5000-', 'if-range': '"stale"' }, SIZE, current), { kind: 'none' });
  assert.deepEqual(requestedRange({ range: 'bytes=5000-', 'if-range': ETAG }, SIZE, current), { kind: 'unsatisfiable' });
  assert.deepEqual(requestedRange({ 'if-range': ETAG }, SIZE, current), { kind: 'none' });
  assert.deepEqual(requestedRange({ range: 'bytes=-10' }, SIZE, current), { kind: 'single', start: 990, end: 999 });
});
