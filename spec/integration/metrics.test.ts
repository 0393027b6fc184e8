import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startGateway, type RunningGateway } from '../../lib/gateway';
import type { StatusSnapshot } from '../../lib/observe/status-page/status-snapshot';
import { captureLog } from '../support/capture-log';
import { testConfig } from '../support/gateway-config';
import { closeServer, listenOnFreePort } from '../support/listen';

// Metrics.* and the status JSON on their own listener: counted at the far end by
// scraping /metrics after known device traffic; a metrics port that is taken leaves devices
// unaffected; nothing of it is reachable on the device listener.

type Res = { status: number; headers: http.IncomingHttpHeaders; body: string };

function request(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
const TOKEN = `${b64({ alg: 'RS256' })}.${b64({ sub: 'dev-0001', 'mender.device': true })}.c2ln`;
const AUTH = { authorization: `Bearer ${TOKEN}` };

describe('metrics and status JSON on the admin listener', () => {
  const upstreamPaths: string[] = [];
  const upstream = http.createServer((req, res) => {
    upstreamPaths.push(req.url ?? '');
    req.resume();
    req.on('end', () => {
      if (req.url?.startsWith('/cut')) return req.socket.destroy(); // the gateway answers 502
      if (req.url?.startsWith('/fail')) return void res.writeHead(500).end('{"error":"boom"}');
      res.writeHead(req.method === 'PUT' ? 204 : 200, { 'content-type': 'application/json' }).end(req.method === 'PUT' ? undefined : '{}');
    });
  });
  const logs = captureLog('info');
  let gateway: RunningGateway;
  let port: number;
  let adminPort: number;
  const blocker = net.createServer();

  before(async () => {
    const up = await listenOnFreePort(upstream);
    gateway = await startGateway(
      testConfig({ UpstreamServer: { URL: `http://127.0.0.1:${up}` }, Metrics: { Enabled: true, Listen: '127.0.0.1:0' } }),
      logs.log,
    );
    await gateway.admin!.ready;
    port = gateway.addresses.http!.port;
    adminPort = gateway.admin!.address()!.port;
  });
  after(async () => {
    await gateway.close(0);
    await closeServer(upstream);
    await closeServer(blocker);
  });

  it('counts requests by method, status and route, never by raw URL; process metrics and cache gauges are there', async () => {
    assert.equal(
      (await request(port, 'GET', '/api/devices/v1/deployments/device/deployments/next?artifact_name=secret-q&device_type=x', AUTH)).status,
      200,
    );
    assert.equal((await request(port, 'GET', '/api/devices/v1/inventory/x', AUTH)).status, 200);
    assert.equal(
      (
        await request(
          port,
          'PUT',
          '/api/devices/v1/deployments/device/deployments/dep-9/status',
          { ...AUTH, 'content-type': 'application/json' },
          '{"status":"downloading"}',
        )
      ).status,
      204,
    );
    assert.equal((await request(port, 'POST', '/fail/1')).status, 500);
    assert.equal((await request(port, 'GET', '/cut/1')).status, 502);
    assert.equal((await request(port, 'HEAD', '/api/internal/v1/gateway/alive')).status, 204);
    assert.equal((await request(port, 'PROPFIND', '/anything')).status, 200);

    const res = await request(adminPort, 'GET', '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'] ?? '', /^text\/plain; version=0\.0\.4/);
    const text = res.body;
    const value = (series: string): number => {
      const line = text.split('\n').find((l) => l.startsWith(series + ' '));
      return line ? Number(line.slice(series.length + 1)) : 0;
    };
    // Every endpoint of the device API table is counted under its own name, whoever answers it.
    assert.equal(value('mender_gateway_http_requests_total{method="GET",code="200",route="deployments-next-v1"}'), 1);
    assert.equal(value('mender_gateway_http_requests_total{method="GET",code="200",route="pass-through"}'), 1);
    assert.equal(value('mender_gateway_http_requests_total{method="PUT",code="204",route="deployment-status"}'), 1);
    assert.equal(value('mender_gateway_http_requests_total{method="POST",code="500",route="pass-through"}'), 1);
    assert.equal(value('mender_gateway_http_requests_total{method="GET",code="502",route="pass-through"}'), 1);
    assert.equal(value('mender_gateway_http_requests_total{method="HEAD",code="204",route="alive"}'), 1);
    assert.equal(value('mender_gateway_http_requests_total{method="OTHER",code="200",route="pass-through"}'), 1);
    assert.ok(value('mender_gateway_http_response_bytes_total{method="GET",code="200",route="pass-through"}') > 100);
    assert.equal(value('mender_gateway_upstream_errors_total{code="502"}'), 1);
    for (const name of [
      'process_start_time_seconds',
      'process_resident_memory_bytes',
      'nodejs_heap_size_used_bytes',
      'mender_gateway_cache_entries',
      'mender_gateway_cache_fills_in_progress',
      'mender_gateway_mtls_refusals_total',
    ]) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
    }
    assert.doesNotMatch(text, /secret-q|\/api\/devices|dep-9|dev-0001/, 'no URL, id or query in any label');
  });

  it('the status JSON shows the device (JWT sub), its address, last request and deployment status, and upstream health', async () => {
    const res = await request(adminPort, 'GET', '/api/status');
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-security-policy']), /default-src 'self'/);
    const s = JSON.parse(res.body) as StatusSnapshot;
    assert.equal(s.devices.length, 1);
    assert.equal(s.devices[0].id, 'dev-0001');
    assert.equal(s.devices[0].address, '127.0.0.1');
    assert.equal(s.devices[0].last_request, 'PUT /api/devices/v1/deployments/device/deployments/dep-9/status');
    assert.deepEqual([s.devices[0].deployment?.id, s.devices[0].deployment?.status], ['dep-9', 'downloading']);
    assert.equal(s.upstream.errors, 1);
    assert.equal(s.upstream.last_error?.code, 502);
    assert.equal(s.upstream.healthy, true, 'answers came after the 502');
    assert.equal(s.cache.enabled, false);
    assert.doesNotMatch(res.body, new RegExp(TOKEN.split('.')[1]), 'the token is not echoed');
    assert.doesNotMatch(logs.text(), new RegExp(TOKEN.split('.')[1]), 'nor logged');
  });

  it('the page and its assets are served on the admin listener only', async () => {
    const page = await request(adminPort, 'GET', '/');
    assert.equal(page.status, 200);
    assert.match(page.body, /<title>Mender Gateway status<\/title>/);
    assert.equal((await request(adminPort, 'GET', '/status/status.js')).status, 200);
    // The chart library comes from the listener itself, from the uplot package (no CDN).
    const uplot = await request(adminPort, 'GET', '/status/uPlot.iife.min.js');
    assert.equal(uplot.status, 200);
    assert.match(uplot.body, /uPlot/);
    assert.equal((await request(adminPort, 'GET', '/status/uPlot.min.css')).status, 200);
    assert.equal((await request(adminPort, 'GET', '/nope')).status, 404);
    assert.equal((await request(adminPort, 'POST', '/metrics')).status, 405);
    const before = upstreamPaths.length;
    await request(port, 'GET', '/metrics');
    await request(port, 'GET', '/api/status');
    assert.deepEqual(upstreamPaths.slice(before), ['/metrics', '/api/status'], 'the device listener proxies them upstream');
  });

  it('a metrics port already taken is logged and device traffic goes on', async () => {
    const taken = await listenOnFreePort(blocker);
    const log = captureLog('info');
    const other = await startGateway(
      testConfig({
        UpstreamServer: { URL: `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}` },
        Metrics: { Enabled: true, Listen: `127.0.0.1:${taken}` },
      }),
      log.log,
    );
    try {
      assert.equal((await request(other.addresses.http!.port, 'GET', '/api/devices/v1/x', AUTH)).status, 200);
      await new Promise((r) => setTimeout(r, 50));
      assert.match(
        log.text(),
        /level=error msg="metrics listener cannot listen; device traffic is not affected, retrying".*address already in use|EADDRINUSE/,
      );
      assert.equal(other.admin!.address(), undefined);
    } finally {
      await other.close(0);
    }
  });
});
