import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normaliseSerial, parseBlocklist } from '../../lib/mtls/serial-blocklist';

// Features.mTLS.BlacklistPath: one serial per line in whatever notation operators
// paste (openssl x509 -serial, Node's serialNumber, colon-separated), normalised to one form.

test('normaliseSerial', () => {
  const cases: [string, string | null][] = [
    ['1ABCDEF0', '1ABCDEF0'],
    ['1abcdef0', '1ABCDEF0'],
    ['0x1abcdef0', '1ABCDEF0'],
    ['0X001ABCDEF0', '1ABCDEF0'],
    ['00:1a:bc:de:f0', '1ABCDEF0'],
    ['  0b:ad:c0:de  ', 'BADC0DE'],
    ['serial=1A', null],
    ['0', '0'],
    ['0000', '0'],
    ['0x', null],
    ['', null],
    ['12G4', null],
    ['-1A', null],
  ];
  for (const [input, expected] of cases) assert.equal(normaliseSerial(input), expected, JSON.stringify(input));
});

test('parseBlocklist: comments, blanks, CRLF, duplicates', () => {
  const parsed = parseBlocklist('# revoked 2026-11\r\n\r\n0x0A\r\n0a  # same device\n  \n00:FF\n');
  assert.deepEqual(parsed, { ok: true, serials: new Set(['A', 'FF']) });
  assert.deepEqual(parseBlocklist(''), { ok: true, serials: new Set() });
});

test('parseBlocklist: one bad line makes the whole file bad, naming the line', () => {
  const cases: [string, RegExp][] = [
    ['0A\nnot-a-serial\n', /^line 2: not a hexadecimal serial number: "not-a-serial"$/],
    ['serial=1A\n', /^line 1: /],
    ['0A\n\n\nzz # comment\n', /^line 4: .*"zz # comment"/],
  ];
  for (const [text, error] of cases) {
    const parsed = parseBlocklist(text);
    assert.equal(parsed.ok, false, text);
    if (!parsed.ok) assert.match(parsed.error, error);
  }
});
