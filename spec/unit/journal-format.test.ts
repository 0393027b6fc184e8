import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeRecords, encodeRecord, type JournalRecord } from '../../lib/journal/journal-file';
import { acceptedStatus } from '../../lib/journal/journal-owner';
import { outcomeOf } from '../../lib/journal/report-replay';
import { replayHeaders } from '../../lib/journal/upstream-call';

const add = (seq: number, body = '{"status":"downloading"}\n'): JournalRecord => ({
  t: 'add',
  entry: {
    seq,
    at: 1_700_000_000_000 + seq,
    device: `dev-${seq % 2}`,
    kind: 'status',
    method: 'PUT',
    path: `/api/devices/v1/deployments/device/deployments/d${seq}/status`,
    headers: { authorization: 'Bearer a.b.c' },
    body: Buffer.from(body),
  },
});

describe('journal records', () => {
  it('round-trips add and done records, body bytes exact', () => {
    const records: JournalRecord[] = [
      add(1),
      add(2, '{"x":"\u00e9\\n"}\n'),
      { t: 'done', seq: 1, result: 'delivered', status: 204 },
      { t: 'done', seq: 2, result: 'expired' },
    ];
    const data = Buffer.concat(records.map(encodeRecord));
    const decoded = decodeRecords(data);
    assert.equal(decoded.validBytes, data.length);
    assert.deepEqual(decoded.records, records);
  });

  const whole = Buffer.concat([add(1), add(2), add(3)].map(encodeRecord));
  const firstTwo = Buffer.concat([add(1), add(2)].map(encodeRecord)).length;
  const cases: [string, Buffer, number, number][] = [
    ['empty file', Buffer.alloc(0), 0, 0],
    ['torn last record (no newline)', whole.subarray(0, whole.length - 5), 2, firstTwo],
    ['last record cut after its newline is whole', whole, 3, whole.length],
    ['only the checksum of the last record written', Buffer.concat([whole.subarray(0, firstTwo), Buffer.from('0badc0de')]), 2, firstTwo],
    [
      'flipped byte in the last record',
      Buffer.concat([whole.subarray(0, whole.length - 3), Buffer.from('X'), whole.subarray(whole.length - 2)]),
      2,
      firstTwo,
    ],
    ['garbage line', Buffer.concat([whole.subarray(0, firstTwo), Buffer.from('not a record\n')]), 2, firstTwo],
    ['valid checksum, not a record', Buffer.concat([whole.subarray(0, firstTwo), Buffer.from('a7b5e3c2 {"t":"zz"}\n')]), 2, firstTwo],
  ];
  for (const [name, data, count, valid] of cases) {
    it(`decoding stops at a bad tail: ${name}`, () => {
      const decoded = decodeRecords(data);
      assert.equal(decoded.records.length, count);
      assert.equal(decoded.validBytes, valid);
    });
  }
});

describe('report outcomes', () => {
  const table: [number | undefined, string][] = [
    [undefined, 'unreachable'],
    [502, 'unreachable'],
    [503, 'unreachable'],
    [504, 'unreachable'],
    [500, 'deferred'],
    [204, 'delivered'],
    [200, 'delivered'],
    [401, 'unauthorized'],
    [409, 'aborted'],
    [400, 'rejected'],
    [404, 'rejected'],
    [413, 'rejected'],
  ];
  for (const [status, expected] of table) {
    it(`${status ?? 'no answer'} → ${expected}`, () => {
      const o = outcomeOf(status);
      assert.equal(o.kind === 'final' ? o.result : o.kind, expected);
    });
  }

  it('answers devices exactly as upstream would: 204 for status and log, 200 for inventory', () => {
    assert.deepEqual(
      ['status', 'log', 'inventory'].map((k) => acceptedStatus(k as 'status')),
      [204, 204, 200],
    );
  });

  it('keeps the device headers for a replay, framing and host dropped', () => {
    assert.deepEqual(
      replayHeaders({
        authorization: 'Bearer t',
        'content-type': 'application/json',
        'transfer-encoding': 'chunked',
        host: 'gw',
        'content-length': '5',
        connection: 'keep-alive',
        'x-forwarded-for': '10.0.0.2',
        accept: ['a', 'b'],
      }),
      { authorization: 'Bearer t', 'content-type': 'application/json', 'x-forwarded-for': '10.0.0.2', accept: 'a, b' },
    );
  });
});
