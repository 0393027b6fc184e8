import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { tempDir } from '../integration/cache-harness';
import { sendRaw } from '../support/fuzz-raw-http';
import type { GatewayProcess } from '../support/gateway-process';
import { alive, assertNoSecrets, gatewayConfig, newSecret, runGateway } from './fault-harness';
import { recordFigures } from './figures';

// Request smuggling against the real gateway process, with a deliberately lenient upstream
// (insecureHTTPParser) that would split a second request out of a desynchronised stream: every
// attempt is refused (400) or forwarded normalised, and the upstream never sees the smuggled
// request. One test per technique.

let dir: string;
let gw: GatewayProcess;
let upstream: http.Server;
const seen: { method: string; url: string; body: string; te?: string; cl?: string }[] = [];
const secret = newSecret();
const PATH = '/api/devices/v1/inventory/device/attributes';
const SMUGGLED = `GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n`;

before(async () => {
  dir = await tempDir('faults-smuggling-');
  upstream = http.createServer({ insecureHTTPParser: true }, (req, res) => {
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        body,
        te: req.headers['transfer-encoding'],
        cl: req.headers['content-length'],
      });
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  gw = await runGateway({
    dir,
    name: 'smuggling',
    config: gatewayConfig({ upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, secret }),
  });
});
after(async () => {
  await gw?.stop();
  upstream.closeAllConnections();
  await new Promise((r) => upstream.close(r));
  await fsp.rm(dir, { recursive: true, force: true });
});

let attempts = 0;

async function attempt(raw: string): Promise<{ status?: number; kind: string; upstreamSaw: typeof seen }> {
  const from = seen.length;
  const port = Number(gw.url('http').split(':').pop());
  const o = await sendRaw(port, Buffer.from(raw, 'latin1'), { timeoutMs: 5_000, halfClose: false });
  // Give a smuggled second request time to arrive upstream.
  await new Promise((r) => setTimeout(r, 300));
  attempts++;
  const upstreamSaw = seen.slice(from);
  assert.ok(!upstreamSaw.some((s) => s.url.includes('smuggled')), `the upstream parsed a smuggled request: ${JSON.stringify(upstreamSaw)}`);
  assert.ok(alive(gw));
  return { status: o.status, kind: o.kind, upstreamSaw };
}

const head = (method: string, headers: string) => `${method} ${PATH} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer x\r\n${headers}\r\n`;

describe('request smuggling', () => {
  it('CL.TE: Content-Length and Transfer-Encoding together are refused with 400, nothing upstream', async () => {
    const r = await attempt(
      head('POST', `Content-Length: ${4 + SMUGGLED.length}\r\nTransfer-Encoding: chunked\r\n`) + `0\r\n\r\n${SMUGGLED}`,
    );
    assert.equal(r.status, 400);
    assert.equal(r.upstreamSaw.length, 0);
  });

  it('TE.CL: a chunk that hides a request behind a short Content-Length is refused with 400', async () => {
    const chunk = SMUGGLED;
    const r = await attempt(
      head('POST', `Content-Length: 4\r\nTransfer-Encoding: chunked\r\n`) + `${chunk.length.toString(16)}\r\n${chunk}\r\n0\r\n\r\n`,
    );
    assert.equal(r.status, 400);
    assert.equal(r.upstreamSaw.length, 0);
  });

  for (const te of ['xchunked', 'chunked, identity', 'identity', 'chunked\x0b', ' chunked']) {
    it(`TE obfuscation (${JSON.stringify(te)}) with a Content-Length: refused or one normalised request`, async () => {
      const body = `0\r\n\r\n${SMUGGLED}`;
      const r = await attempt(head('POST', `Content-Length: ${body.length}\r\nTransfer-Encoding: ${te}\r\n`) + body);
      if (r.status !== 400) assert.ok(r.upstreamSaw.length <= 1, JSON.stringify(r));
      else assert.equal(r.upstreamSaw.length, 0);
    });
  }

  it('two different Content-Length headers are refused with 400', async () => {
    const r = await attempt(head('POST', `Content-Length: 2\r\nContent-Length: ${2 + SMUGGLED.length}\r\n`) + `[]${SMUGGLED}`);
    assert.equal(r.status, 400);
    assert.equal(r.upstreamSaw.length, 0);
  });

  it('a space before the colon (Transfer-Encoding : chunked) is refused with 400', async () => {
    const r = await attempt(head('POST', `Transfer-Encoding : chunked\r\nContent-Length: 5\r\n`) + `0\r\n\r\n`);
    assert.equal(r.status, 400);
  });

  for (const method of ['DELETE', 'OPTIONS', 'GET']) {
    it(`chunked ${method} whose body is a request: forwarded as chunked, the upstream sees one request with that body`, async () => {
      const r = await attempt(
        head(method, 'Transfer-Encoding: chunked\r\n') + `${SMUGGLED.length.toString(16)}\r\n${SMUGGLED}\r\n0\r\n\r\n`,
      );
      assert.equal(r.status, 200);
      assert.equal(r.upstreamSaw.length, 1, JSON.stringify(r.upstreamSaw));
      assert.equal(r.upstreamSaw[0].method, method);
      assert.equal(r.upstreamSaw[0].body, SMUGGLED, 'the body arrives as a body');
      assert.notEqual(r.upstreamSaw[0].cl, '0', 'not rewritten to Content-Length: 0 (CVE-2026-29057)');
    });
  }

  it('two pipelined requests on one connection arrive as exactly two requests', async () => {
    const one = head('PUT', 'Content-Length: 2\r\n') + '[]';
    const r = await attempt(one + one.replace('PUT', 'PATCH'));
    assert.equal(r.status, 200);
    await new Promise((res) => setTimeout(res, 300));
    assert.deepEqual(
      seen.slice(-2).map((s) => [s.method, s.body]),
      [
        ['PUT', '[]'],
        ['PATCH', '[]'],
      ],
    );
  });

  it('nothing leaked into the log', () => {
    assertNoSecrets(gw.output(), [secret]);
    recordFigures('request smuggling attempts', {
      trials: attempts,
      faults: attempts,
      inputs: attempts,
      bytesLost: 0,
      note: 'CL.TE, TE.CL, TE obfuscation ×5, duplicate CL, space before colon, chunked DELETE/OPTIONS/GET, pipelining',
    });
  });
});
