import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { fetchOrigin } from '../../lib/artifacts/origin-fetch';
import { GatewayError } from '../../lib/http/gateway-error';
import { closeServer, listenOnFreePort } from '../support/listen';

// A local origin that records what it was sent and answers per path.
const seen: { url: string; headers: http.IncomingHttpHeaders }[] = [];
const origin = http.createServer((req, res) => {
  seen.push({ url: req.url ?? '', headers: req.headers });
  if (req.url?.startsWith('/stall')) return; // never answers
  const body = Buffer.alloc(5000, 7);
  res.writeHead(req.headers.range ? 206 : 200, { 'content-length': body.length, etag: '"abc"' });
  res.end(req.method === 'HEAD' ? undefined : body);
});
const garbage = net.createServer((socket) => socket.end('NOT HTTP AT ALL\r\n\r\n'));
let port = 0;
let garbagePort = 0;

after(async () => {
  await closeServer(origin);
  await closeServer(garbage);
});

before(async () => {
  port = await listenOnFreePort(origin);
  garbagePort = await listenOnFreePort(garbage);
});

test('sends the presigned path and query verbatim, Host = URL host, identity encoding', async () => {
  const presigned = `http://127.0.0.1:${port}/bucket/ten%2Fant/obj?X-Amz-Credential=AK%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&response-content-disposition=attachment%3B%20filename%3D%22a%2Bb.mender%22&X-Amz-Signature=abc`;
  const res = await fetchOrigin(new URL(presigned));
  res.body.resume();
  assert.equal(res.status, 200);
  assert.equal(res.contentLength, 5000);
  assert.equal(res.etag, '"abc"');
  const last = seen.at(-1)!;
  assert.equal(last.url, presigned.slice(`http://127.0.0.1:${port}`.length));
  assert.equal(last.headers.host, `127.0.0.1:${port}`);
  assert.equal(last.headers['accept-encoding'], 'identity');
  assert.equal(last.headers.range, undefined);
});

test('forwards a range, closed or open-ended, and HEAD', async () => {
  const open = await fetchOrigin(new URL(`http://127.0.0.1:${port}/o`), { range: { start: 100 } });
  open.body.resume();
  assert.equal(seen.at(-1)!.headers.range, 'bytes=100-');
  assert.equal(open.status, 206);
  const closed = await fetchOrigin(new URL(`http://127.0.0.1:${port}/o`), { range: { start: 5, end: 9 } });
  closed.body.resume();
  assert.equal(seen.at(-1)!.headers.range, 'bytes=5-9');
  const head = await fetchOrigin(new URL(`http://127.0.0.1:${port}/o`), { method: 'HEAD' });
  head.body.resume();
  assert.equal(head.contentLength, 5000);
});

test('connection refused → UPSTREAM_UNREACHABLE', async () => {
  const closed = http.createServer();
  const freePort = await listenOnFreePort(closed);
  await closeServer(closed);
  await assert.rejects(fetchOrigin(new URL(`http://127.0.0.1:${freePort}/x?X-Amz-Signature=s`)), (err: unknown) => {
    assert.ok(err instanceof GatewayError);
    assert.equal(err.code, 'UPSTREAM_UNREACHABLE');
    assert.doesNotMatch(err.message, /X-Amz-Signature/);
    return true;
  });
});

test('no headers within the timeout → UPSTREAM_TIMEOUT', async () => {
  await assert.rejects(fetchOrigin(new URL(`http://127.0.0.1:${port}/stall`), { timeoutMs: 200 }), (err: unknown) => {
    assert.ok(err instanceof GatewayError);
    assert.equal(err.code, 'UPSTREAM_TIMEOUT');
    return true;
  });
});

test('a reply that is not HTTP → ORIGIN_ERROR', async () => {
  await assert.rejects(fetchOrigin(new URL(`http://127.0.0.1:${garbagePort}/x`)), (err: unknown) => {
    assert.ok(err instanceof GatewayError);
    assert.equal(err.code, 'ORIGIN_ERROR');
    return true;
  });
});

test('abort before headers → rejects, origin request torn down', async () => {
  const controller = new AbortController();
  const pending = fetchOrigin(new URL(`http://127.0.0.1:${port}/stall/abort`), { signal: controller.signal });
  setTimeout(() => controller.abort(), 50);
  await assert.rejects(pending, (err: unknown) => err instanceof GatewayError && err.code === 'ORIGIN_ERROR');
});

test('unsupported scheme is refused without a request', async () => {
  const before = seen.length;
  await assert.rejects(
    fetchOrigin(new URL('ftp://127.0.0.1/x')),
    (err: unknown) => err instanceof GatewayError && err.code === 'ORIGIN_ERROR',
  );
  assert.equal(seen.length, before);
});

test('a kept-alive connection reset as it is reused: sent once more on another connection, not an origin error', async () => {
  const used = new WeakSet<net.Socket>();
  let resets = 0;
  let served = 0;
  // Resets every request that comes on an already used connection, as an origin closing an
  // idle connection just as the gateway reuses it.
  const flaky = http.createServer((req, res) => {
    if (used.has(req.socket)) {
      resets++;
      return req.socket.destroy();
    }
    used.add(req.socket);
    served++;
    res.writeHead(200, { 'content-length': 3 }).end('abc');
  });
  const flakyPort = await listenOnFreePort(flaky);
  const agent = new http.Agent({ keepAlive: true });
  try {
    const url = new URL(`http://127.0.0.1:${flakyPort}/o`);
    for (let i = 0; i < 3; i++) {
      const res = await fetchOrigin(url, { agent });
      res.body.resume();
      await new Promise((r) => res.body.on('end', r));
      await new Promise((r) => setImmediate(r)); // the connection back in the agent's pool
      assert.equal(res.status, 200);
    }
    assert.equal(served, 3);
    assert.equal(resets, 2, 'the 2nd and 3rd requests met a reset first');
  } finally {
    agent.destroy();
    await closeServer(flaky);
  }
});

test('a reset on a new connection is an error at once (no second request)', async () => {
  let requests = 0;
  const resetting = http.createServer((req) => {
    requests++;
    req.socket.destroy();
  });
  const resettingPort = await listenOnFreePort(resetting);
  try {
    await assert.rejects(
      fetchOrigin(new URL(`http://127.0.0.1:${resettingPort}/o`), { agent: new http.Agent({ keepAlive: true }) }),
      (err: unknown) => {
        assert.ok(err instanceof GatewayError, String(err));
        return true;
      },
    );
    assert.equal(requests, 1);
  } finally {
    await closeServer(resetting);
  }
});
