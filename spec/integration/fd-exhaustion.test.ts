import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, writeGatewayConfig } from '../support/gateway-process';
import { closeServer, listenOnFreePort } from '../support/listen';

// The gateway under `ulimit -n 256` takes more connections than it has
// descriptors for. It stays up, transfers already running finish byte-identical, a device it
// accepted but cannot serve gets 503 with Mender's JSON body (never a 502), the refusals are
// one rate-limited line (not a line per connection), and connections succeed again once the
// flood is gone.

const LIMIT = 256;
const FLOOD = 400;
const BIG = 4 * 1024 * 1024;
const NEXT = '/api/devices/v1/deployments/device/deployments/next';

function bigBody(): Buffer {
  const b = Buffer.alloc(BIG);
  for (let i = 0; i < BIG; i += 4) b.writeUInt32LE((i * 2654435761) >>> 0, i);
  return b;
}

/** A download read slowly (paused most of the time), so it is in flight during the flood. */
function slowDownload(port: number): Promise<{ status: number; sha: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/api/devices/v1/big', agent: false }, (res) => {
        const hash = createHash('sha256');
        let bytes = 0;
        res.on('data', (chunk: Buffer) => {
          hash.update(chunk);
          bytes += chunk.length;
          res.pause();
          setTimeout(() => res.resume(), 15);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, sha: hash.digest('hex'), bytes }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

/** One device of the flood: its request, and the first bytes of whatever came back. */
function floodConnection(port: number): { answer: Promise<string>; close(): void } {
  const socket = net.connect(port, '127.0.0.1');
  let got = '';
  socket.on('connect', () => socket.write(`GET ${NEXT} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer x\r\n\r\n`));
  socket.on('data', (d) => (got += d.toString('latin1')));
  socket.on('error', () => undefined);
  const answer = new Promise<string>((resolve) => {
    socket.on('close', () => resolve(got));
    setTimeout(() => resolve(got), 6000).unref();
  });
  return { answer, close: () => socket.destroy() };
}

async function get(port: number): Promise<number> {
  return new Promise((resolve) => {
    http
      .get({ host: '127.0.0.1', port, path: NEXT, agent: false, headers: { authorization: 'Bearer x' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', () => resolve(0));
  });
}

test('out of file descriptors: the gateway stays up, finishes what runs, answers 503 or refuses with a rate-limited line, and recovers', {
  timeout: 120_000,
}, async (t) => {
  const body = bigBody();
  const want = createHash('sha256').update(body).digest('hex');
  const upstream = http.createServer((req, res) => {
    if (req.url === '/api/devices/v1/big') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BIG });
      res.end(body);
      return;
    }
    res.writeHead(204).end();
  });
  const upstreamPort = await listenOnFreePort(upstream);
  const dir = mkdtempSync(join(tmpdir(), 'fd-exhaustion-'));
  const configFile = writeGatewayConfig(dir, {
    HTTP: { Enabled: true, Listen: '127.0.0.1:0' },
    UpstreamServer: { URL: `http://127.0.0.1:${upstreamPort}` },
    Workers: 1,
    Features: { ReportJournal: { Enabled: false } },
  });
  const gateway = await startGateway({ configFile, waitFor: ['http'], openFileLimit: LIMIT });
  try {
    const port = Number(gateway.listeners.http.split(':').pop());
    assert.match(gateway.output(), new RegExp(`open-file limit.*soft=${LIMIT}\\b.*devices_at_once=${(LIMIT - 64) / 2}\\b`));
    assert.equal(await get(port), 204);

    const downloads = [slowDownload(port), slowDownload(port)];
    await new Promise((r) => setTimeout(r, 300));
    const flood = Array.from({ length: FLOOD }, () => floodConnection(port));
    // Held long enough for the descriptor watch (every 2 s) to see the limit.
    await new Promise((r) => setTimeout(r, 5000));
    for (const f of flood) f.close();
    const answers = await Promise.all(flood.map((f) => f.answer));

    for (const d of await Promise.all(downloads)) {
      assert.equal(d.status, 200);
      assert.equal(d.bytes, BIG);
      assert.equal(d.sha, want, 'a transfer that was running must finish byte-identical');
    }
    const statuses = answers.filter((a) => a.length > 0).map((a) => a.slice(0, 12));
    assert.ok(statuses.length > 0, 'some devices of the flood were served');
    for (const a of answers.filter((x) => x.length > 0)) {
      assert.match(a, /^HTTP\/1\.1 (204|503) /, `a flood device got ${JSON.stringify(a.slice(0, 60))}`);
      if (a.startsWith('HTTP/1.1 503')) assert.match(a, /\{"error":"gateway out of file descriptors[^"]*","request_id":"[^"]*"\}/);
    }
    assert.ok(
      answers.filter((a) => a.length === 0).length > 0,
      `with ${FLOOD} connections and ${LIMIT} descriptors some must have been refused`,
    );

    // Descriptors free again: new devices are served (the first tries may still meet the tail).
    let status = 0;
    for (let i = 0; i < 50 && status !== 204; i++) {
      status = await get(port);
      if (status !== 204) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(status, 204, 'a device is served once the flood is gone');
    assert.equal(gateway.process.exitCode, null, 'the gateway is still running');

    const lines = gateway
      .output()
      .split('\n')
      .filter((l) => l.includes('out of file descriptors'));
    const count = (re: RegExp) => answers.filter((a) => re.test(a)).length;
    t.diagnostic(
      `flood of ${FLOOD}: ${count(/^HTTP\/1\.1 204/)} served 204, ${count(/^HTTP\/1\.1 503/)} answered 503, ${count(/^$/)} refused; ${lines.length} log lines: ${lines.map((l) => l.replace(/^.*msg=/, '')).join(' | ')}`,
    );
    assert.ok(lines.length >= 1, `no out-of-descriptors line in the log:\n${gateway.output().slice(-3000)}`);
    assert.match(lines[0], new RegExp(`level=error msg="out of file descriptors \\(open-file limit ${LIMIT}\\): `));
    // One line a second at most over a flood of ~6 s, not one per refused connection.
    assert.ok(lines.length <= 10, `${lines.length} out-of-descriptors lines: not rate-limited`);
    assert.ok(!/websocket to upstream failed|upstream server unreachable: EMFILE/.test(gateway.output()));
  } finally {
    await gateway.stop();
    await closeServer(upstream);
    rmSync(dir, { recursive: true, force: true });
  }
});
