import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { decodeRecords, type JournalEntry } from '../../lib/journal/journal-file';
import { issuedVerdict, KnownTokens } from '../../lib/journal/known-tokens';
import { ReportJournal } from '../../lib/journal/report-journal';
import { ReportReplay } from '../../lib/journal/report-replay';
import { createUpstream } from '../../lib/proxy/upstream';
import { captureLog } from '../support/capture-log';
import { testConfig } from '../support/gateway-config';
import { closeServer, listenOnFreePort } from '../support/listen';
import { startTimeOf } from '../../lib/server/process-liveness';

// The journal on a real directory: what it holds survives a reopen, a torn tail is cut off,
// inventory keeps the newest per device, MaxSize refuses, MaxAge expires, and the file shrinks
// back once everything ended; the default (lazy) journal makes nothing until a report waits;
// one process per journal directory.

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'journal-store-'));
  dirs.push(d);
  return join(d, 'journal');
}

const report = (device: string, kind: JournalEntry['kind'], body: string, at = Date.now()): Omit<JournalEntry, 'seq'> => ({
  at,
  device,
  kind,
  method: 'PUT',
  path: kind === 'inventory' ? '/api/devices/v1/inventory/device/attributes' : `/api/devices/v1/deployments/device/deployments/d1/${kind}`,
  headers: { authorization: `Bearer ${device}` },
  body: Buffer.from(body),
});

const open = (dir: string, maxBytes = 1 << 20, maxAgeMs = 3_600_000): Promise<ReportJournal> =>
  ReportJournal.open({ dir, maxBytes, maxAgeMs, log: captureLog('error').log });

describe('report journal on disk', () => {
  it('keeps per-device order across a reopen, and the file and directory are private', async () => {
    const dir = tempDir();
    let j = await open(dir);
    for (const s of ['downloading', 'installing', 'success']) {
      assert.equal(await j.add(report('a', 'status', `{"status":"${s}"}`)), 'journaled');
      assert.equal(await j.add(report('b', 'status', `{"status":"${s}"}`)), 'journaled');
    }
    await j.finish(j.pendingOf('a')[0]!, 'delivered', 204);
    await j.close();
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(join(dir, 'reports.journal')).mode & 0o777, 0o600);

    j = await open(dir);
    assert.deepEqual(
      j.pendingOf('a').map((e) => e.body.toString()),
      ['{"status":"installing"}', '{"status":"success"}'],
    );
    assert.deepEqual(
      j.pendingOf('b').map((e) => e.body.toString()),
      ['{"status":"downloading"}', '{"status":"installing"}', '{"status":"success"}'],
    );
    assert.equal(j.stats.queued, 5);
    // New sequence numbers continue after the old ones: order stays total.
    await j.add(report('a', 'log', '{"messages":[]}'));
    const seqs = j.pendingOf('a').map((e) => e.seq);
    assert.deepEqual(
      [...seqs].sort((x, y) => x - y),
      seqs,
    );
    await j.close();
  });

  it('drops a torn last record and keeps everything before it', async () => {
    const dir = tempDir();
    const j = await open(dir);
    await j.add(report('a', 'status', '{"status":"downloading"}'));
    await j.add(report('a', 'status', '{"status":"installing"}'));
    await j.close();
    const file = join(dir, 'reports.journal');
    const before = statSync(file).size;
    appendFileSync(file, '1234abcd {"t":"add","seq":3,"dev');
    const capture = captureLog('warn');
    const again = await ReportJournal.open({ dir, maxBytes: 1 << 20, maxAgeMs: 3_600_000, log: capture.log });
    assert.equal(again.stats.queued, 2);
    assert.equal(statSync(file).size, before);
    assert.match(capture.lines.join('\n'), /torn last record/);
    await again.close();
  });

  it('keeps only the newest inventory of a device, in the order it arrived', async () => {
    const j = await open(tempDir());
    await j.add(report('a', 'inventory', '[{"name":"v","value":1}]'));
    await j.add(report('a', 'status', '{"status":"success"}'));
    await j.add(report('a', 'inventory', '[{"name":"v","value":2}]'));
    await j.add(report('b', 'inventory', '[{"name":"v","value":3}]'));
    assert.deepEqual(
      j.pendingOf('a').map((e) => e.body.toString()),
      ['{"status":"success"}', '[{"name":"v","value":2}]'],
    );
    assert.equal(j.stats.superseded, 1);
    assert.equal(j.stats.queued, 3);
    await j.close();
  });

  it('refuses a report past MaxSize and expires reports past MaxAge, counting both', async () => {
    const dir = tempDir();
    const j = await open(dir, 1024, 60_000);
    let added = 0;
    while ((await j.add(report('a', 'status', `{"status":"downloading","n":${added}}`, Date.now() - 120_000))) === 'journaled') added++;
    assert.ok(added > 2 && added < 10, `added ${added}`);
    assert.ok(j.stats.bytes <= 1024);
    assert.equal(j.stats.failed, 1);
    assert.equal(await j.add(report('b', 'status', '{"status":"success"}')), 'full');
    await j.expire();
    assert.equal(j.pendingOf('a').length, 0);
    assert.equal(j.stats.failed, 2 + added);
    // Room again once the old ones ended.
    assert.equal(await j.add(report('b', 'status', '{"status":"success"}')), 'journaled');
    await j.close();
  });

  it('a report whose token upstream refused ends at MaxAge as unauthorized, recorded with its 401 and counted as failed', async () => {
    const dir = tempDir();
    const j = await open(dir, 1024 * 1024, 60_000);
    await j.add(report('a', 'status', '{"status":"success"}', Date.now() - 120_000));
    await j.add(report('b', 'status', '{"status":"installing"}'));
    await j.expire(Date.now(), (device) => (device === 'a' ? 'unauthorized' : 'expired'));
    assert.equal(j.pendingOf('a').length, 0);
    assert.equal(j.pendingOf('b').length, 1, 'a report within MaxAge stays');
    assert.equal(j.stats.failed, 1);
    const done = decodeRecords(readFileSync(join(dir, 'reports.journal'))).records.filter((r) => r.t === 'done');
    assert.deepEqual(
      done.map((r) => r.t === 'done' && [r.result, r.status]),
      [['unauthorized', 401]],
    );
    await j.close();
  });

  it('lazy: nothing on disk until a report has to wait; then the directory, the file and the lock, released on close', async () => {
    const dir = tempDir();
    const j = await ReportJournal.open({ dir, maxBytes: 1 << 20, maxAgeMs: 60_000, log: captureLog('error').log, lazy: true });
    assert.equal(existsSync(dir), false);
    assert.equal(await j.add(report('a', 'status', '{"status":"success"}')), 'journaled');
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(readFileSync(join(dir, 'reports.lock'), 'utf8').trim(), `${process.pid} ${startTimeOf('self')}`);
    await j.close();
    assert.equal(existsSync(join(dir, 'reports.lock')), false);
    // A lazy journal whose file exists opens it at once: what waits is replayed after a restart.
    const again = await ReportJournal.open({ dir, maxBytes: 1 << 20, maxAgeMs: 60_000, log: captureLog('error').log, lazy: true });
    assert.equal(again.pendingOf('a').length, 1);
    await again.close();
  });

  it('one process per journal directory: a live owner refuses a second, a dead one is taken over', async () => {
    const dir = tempDir();
    mkdirSync(dir, { recursive: true });
    // The test runner: alive, by pid alone (a lock written before start times) and with its own.
    for (const owner of [`${process.ppid}`, `${process.ppid} ${startTimeOf(process.ppid)}`]) {
      writeFileSync(join(dir, 'reports.lock'), `${owner}\n`);
      await assert.rejects(open(dir), /in use by process \d+ \(one gateway per journal directory\)/);
    }
    // Gone; or its pid now names another process (another start time): taken over either way.
    const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
    for (const owner of [`${gone}`, `${process.ppid} ${startTimeOf(process.ppid)! + 1}`]) {
      writeFileSync(join(dir, 'reports.lock'), `${owner}\n`);
      const j = await open(dir);
      assert.equal(readFileSync(join(dir, 'reports.lock'), 'utf8').trim(), `${process.pid} ${startTimeOf('self')}`);
      await j.close();
    }
  });

  it('a report journaled before tokens were checked, refused with its own token, ends at once: it borrows no newer token and holds nothing back', async () => {
    const dir = tempDir();
    const j = await open(dir);
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    // One exp for every token: a second boundary between two calls must not change token(n).
    const exp = Math.floor(Date.now() / 1000) + 3600;
    const token = (n: number) => `${b64({ alg: 'RS256' })}.${b64({ sub: 'dev-1', exp, n })}.sig`;
    // Upstream refuses every token but the newest, which it would take.
    const seen: (string | undefined)[] = [];
    const upstream = http.createServer((req, res) => {
      seen.push(req.headers.authorization);
      req.resume();
      res.writeHead(req.headers.authorization === `Bearer ${token(2)}` ? 204 : 401).end();
    });
    const port = await listenOnFreePort(upstream);
    const known = new KnownTokens(undefined, captureLog('error').log);
    const replay = new ReportReplay(
      j,
      createUpstream(testConfig({ UpstreamServer: { URL: `http://127.0.0.1:${port}` } }).UpstreamServer),
      captureLog('error').log,
      known,
    );
    try {
      const old = { ...report('dev-1', 'status', '{"status":"success"}'), headers: { authorization: `Bearer ${token(1)}` } };
      assert.equal(await j.add(old), 'journaled'); // no `trusted`: as a journal of the version before
      known.apply(issuedVerdict(token(2))!);
      replay.noteAuthorization('dev-1', `Bearer ${token(2)}`);
      assert.equal(await replay.withDevice('dev-1', () => replay.flush('dev-1')), 'empty');
      assert.deepEqual(seen, [`Bearer ${token(1)}`], 'tried with its own token only');
      assert.equal(j.pendingOf('dev-1').length, 0);
    } finally {
      replay.close();
      await j.close();
      await closeServer(upstream);
    }
  });

  it('shrinks the file to nothing once every report ended', async () => {
    const dir = tempDir();
    const j = await open(dir);
    for (let i = 0; i < 20; i++) await j.add(report(`d${i % 4}`, 'status', '{"status":"installing"}'));
    for (const device of j.devices()) for (const e of [...j.pendingOf(device)]) await j.finish(e, 'delivered', 204);
    assert.equal(readFileSync(join(dir, 'reports.journal')).length, 0);
    await j.close();
    const again = await open(dir);
    assert.equal(again.stats.queued, 0);
    await again.close();
  });
});
