import { crc32 } from 'node:zlib';

// The journal's on-disk format: one record per line, `<crc32 hex> <JSON>\n`. Append-only; a
// record is either a report to deliver (`add`) or the end of one (`done`). A crash can leave a
// torn last line: decoding stops at the first line that is incomplete or fails its checksum,
// and says how many bytes were valid so the file can be cut back there.

export type ReportKind = 'status' | 'log' | 'inventory';

/** What finally happened to a report; every one ends in exactly one of these. */
export type ReportResult =
  | 'delivered' // upstream answered 2xx
  | 'aborted' // 409: the deployment was aborted (or the device decommissioned)
  | 'rejected' // another 4xx: upstream refused it (logged with the status)
  | 'unauthorized' // 401 and no newer token from the device before it expired
  | 'expired' // older than MaxAge, upstream never reached
  | 'superseded'; // an inventory replaced by a newer one of the same device

export interface JournalEntry {
  seq: number;
  /** ms since epoch when the device sent it */
  at: number;
  device: string;
  kind: ReportKind;
  method: string;
  /** path and query as the device sent it */
  path: string;
  /** the device's headers, Authorization included (hence the file's mode 0600) */
  headers: Record<string, string>;
  body: Buffer;
}

export type JournalRecord =
  | { t: 'add'; entry: JournalEntry }
  | { t: 'done'; seq: number; result: ReportResult; status?: number };

/** An entry as one JSON line: the body in base64. */
type AddLine = { t: 'add' } & Omit<JournalEntry, 'body'> & { body: string };

export function encodeRecord(record: JournalRecord): Buffer {
  const json =
    record.t === 'add'
      ? JSON.stringify({ t: 'add', ...record.entry, body: record.entry.body.toString('base64') } satisfies AddLine)
      : JSON.stringify(record);
  const payload = Buffer.from(json, 'utf8');
  const crc = crc32(payload).toString(16).padStart(8, '0');
  return Buffer.concat([Buffer.from(`${crc} `), payload, Buffer.from('\n')]);
}

export interface Decoded {
  records: JournalRecord[];
  /** bytes of whole, valid records from the start; anything after is torn or corrupt */
  validBytes: number;
}

export function decodeRecords(data: Buffer): Decoded {
  const records: JournalRecord[] = [];
  let offset = 0;
  while (offset < data.length) {
    const end = data.indexOf(0x0a, offset);
    if (end < 0) break; // torn: no newline yet
    const record = decodeLine(data.subarray(offset, end));
    if (!record) break;
    records.push(record);
    offset = end + 1;
  }
  return { records, validBytes: offset };
}

function decodeLine(line: Buffer): JournalRecord | undefined {
  if (line.length < 10 || line[8] !== 0x20) return undefined;
  const payload = line.subarray(9);
  if (crc32(payload).toString(16).padStart(8, '0') !== line.subarray(0, 8).toString('latin1')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
  const r = parsed as Omit<Partial<AddLine>, 't'> & { t?: string; result?: ReportResult; status?: number };
  if (r.t === 'done' && typeof r.seq === 'number' && typeof r.result === 'string') {
    return { t: 'done', seq: r.seq, result: r.result, ...(typeof r.status === 'number' ? { status: r.status } : {}) };
  }
  if (r.t === 'add' && typeof r.seq === 'number' && typeof r.device === 'string' && typeof r.body === 'string') {
    const { t: _t, body, ...rest } = r as unknown as AddLine;
    return { t: 'add', entry: { ...rest, body: Buffer.from(body, 'base64') } };
  }
  return undefined;
}
