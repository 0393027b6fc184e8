import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startGateway, type RunningGateway } from '../../lib/gateway';
import { MAX_INVENTORY_BYTES } from '../../lib/device-api';
import { captureLog } from '../support/capture-log';
import { testConfig } from '../support/gateway-config';
import { closeServer, listenOnFreePort } from '../support/listen';

// DeviceSystem through the real gateway: a recording upstream on 127.0.0.1 sees what
// the device's inventory upload became — sized or chunked, PUT or PATCH — and that anything it
// cannot extend still arrives byte for byte.

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

const PATH = '/api/devices/v1/inventory/device/attributes';

function send(port: number, method: string, path: string, body: Buffer | string, opts: { chunked?: boolean } = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': 'application/json', authorization: 'Bearer not.a.token' };
    if (!opts.chunked) headers['content-length'] = String(Buffer.byteLength(body));
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    if (opts.chunked) {
      // Two writes: the body really arrives in chunks, with no Content-Length.
      const b = Buffer.from(body);
      req.write(b.subarray(0, Math.floor(b.length / 2)));
      setTimeout(() => req.end(b.subarray(Math.floor(b.length / 2))), 20);
    } else req.end(body);
  });
}

describe('DeviceSystem inventory injection', () => {
  const seen: Seen[] = [];
  const upstream = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(200).end();
    });
  });
  const logs = captureLog('debug');
  let on: RunningGateway;
  let off: RunningGateway;
  let journaled: RunningGateway;
  let onPort: number;
  let offPort: number;
  const journalDir = mkdtempSync(join(tmpdir(), 'device-system-journal-'));
  const last = (): Seen => seen[seen.length - 1];

  before(async () => {
    const port = await listenOnFreePort(upstream);
    const base = { UpstreamServer: { URL: `http://127.0.0.1:${port}` } };
    on = await startGateway(
      testConfig({
        ...base,
        Features: {
          DeviceSystem: {
            Enabled: true,
            SystemID: 'line-3',
            DefaultInventory: [
              { Name: 'site', Value: 'Hall B' },
              { Name: 'floor', Value: 2 },
            ],
          },
        },
      }),
      logs.log,
    );
    off = await startGateway(testConfig(base), captureLog('error').log);
    journaled = await startGateway(
      testConfig({
        ...base,
        Features: {
          DeviceSystem: { Enabled: true, SystemID: 'line-3', DefaultInventory: [] },
          ReportJournal: { Enabled: true, Path: journalDir },
        },
      }),
      captureLog('error').log,
    );
    onPort = on.addresses.http!.port;
    offPort = off.addresses.http!.port;
  });
  after(async () => {
    await on.close(0);
    await off.close(0);
    await journaled.close(0);
    await closeServer(upstream);
    rmSync(journalDir, { recursive: true, force: true });
  });

  const extended = [
    { method: 'PUT', chunked: false },
    { method: 'PATCH', chunked: false },
    { method: 'PUT', chunked: true },
    { method: 'PATCH', chunked: true },
  ];
  for (const c of extended) {
    it(`${c.method} ${c.chunked ? 'chunked' : 'sized'}: system id and defaults added, device values win, Content-Length matches`, async () => {
      const body = JSON.stringify([
        { name: 'device_type', value: 'rpi4' },
        { name: 'site', value: 'Hall A' },
      ]);
      assert.equal(await send(onPort, c.method, PATH, body, { chunked: c.chunked }), 200);
      const got = last();
      assert.equal(got.method, c.method);
      assert.equal(got.headers['transfer-encoding'], undefined);
      assert.equal(Number(got.headers['content-length']), got.body.length);
      assert.deepEqual(JSON.parse(got.body.toString()), [
        { name: 'device_type', value: 'rpi4' },
        { name: 'site', value: 'Hall A' },
        { name: 'mender_gateway_system_id', value: 'line-3' },
        { name: 'floor', value: 2 },
      ]);
    });
  }

  it('a malformed body is forwarded byte for byte and logged, never a gateway error', async () => {
    const body = '{"this is": "not an attribute list"';
    assert.equal(await send(onPort, 'PUT', PATH, body, { chunked: true }), 200);
    assert.equal(last().body.toString(), body);
    assert.match(logs.text(), /inventory not extended: malformed body forwarded untouched.*not JSON/);
  });

  it('a body past the cap is forwarded untouched, chunked or sized', async () => {
    const big = JSON.stringify([{ name: 'blob', value: 'x'.repeat(MAX_INVENTORY_BYTES) }]);
    for (const chunked of [true, false]) {
      assert.equal(await send(onPort, 'PATCH', PATH, big, { chunked }), 200);
      assert.equal(last().body.length, Buffer.byteLength(big));
      assert.ok(last().body.equals(Buffer.from(big)), 'same bytes');
    }
    assert.match(logs.text(), /inventory not extended: body too large/);
  });

  it('with the journal too: a body the rewrite takes past the cap goes upstream whole, sized as rewritten', async () => {
    const value = 'x'.repeat(MAX_INVENTORY_BYTES - 40);
    const body = JSON.stringify([{ name: 'blob', value }]);
    assert.ok(Buffer.byteLength(body) <= MAX_INVENTORY_BYTES);
    assert.equal(await send(journaled.addresses.http!.port, 'PUT', PATH, body), 200);
    const got = last();
    assert.ok(got.body.length > MAX_INVENTORY_BYTES, 'past the cap once extended');
    assert.equal(Number(got.headers['content-length']), got.body.length);
    assert.deepEqual(JSON.parse(got.body.toString()), [
      { name: 'blob', value },
      { name: 'mender_gateway_system_id', value: 'line-3' },
    ]);
  });

  it('other paths and methods, and a gateway without DeviceSystem, leave inventory alone', async () => {
    const body = JSON.stringify([{ name: 'device_type', value: 'rpi4' }]);
    assert.equal(await send(onPort, 'POST', PATH, body), 200);
    assert.equal(last().body.toString(), body);
    assert.equal(await send(onPort, 'PUT', '/api/devices/v1/deviceconfig/configuration', body), 200);
    assert.equal(last().body.toString(), body);
    assert.equal(await send(offPort, 'PUT', PATH, body), 200);
    assert.equal(last().body.toString(), body);
  });
});
