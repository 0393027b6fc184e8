import http from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { setForwardedHeaders } from '../../lib/http/forwarded-headers';
import type { RequestContext } from '../../lib/http/route';
import { readBounded } from '../../lib/http/bounded-body';
import { createForwarder } from '../../lib/proxy/forward';
import { createPassThrough } from '../../lib/proxy/pass-through';
import { createUpstream } from '../../lib/proxy/upstream';

// One engine of bench/upstream-engines.ts in a process of its own (so its RSS is its own), as a
// small HTTP server in front of the stub upstream: argv = engine, upstream port, [proxy port].
//   gateway    : lib/proxy as the gateway uses it (undici Pool + Exchange; ProxyAgent behind a
//                proxy; websocket-tunnel.ts for upgrades, over CONNECT behind a proxy)
//   http-proxy : http-proxy 1.18.1 web/ws with a keep-alive agent (https-proxy-agent behind a
//                proxy), deleteLength removed, as lib/proxy/pass-through.ts had it
//   http-agent : http.request + keep-alive http.Agent, piped (the former agent-dial.ts path)
// Paths: POST /buffered reads the body first and hands it over (the auth/inventory/report
// routes); anything else streams.

type Engine = {
  web(req: http.IncomingMessage, res: http.ServerResponse, body?: Buffer | Readable): void;
  ws?(req: http.IncomingMessage, socket: Socket, head: Buffer): void;
};

const [engineName, upstreamPort, proxyPort] = process.argv.slice(2);
const target = `http://127.0.0.1:${upstreamPort}`;
const proxyUrl = proxyPort ? `http://127.0.0.1:${proxyPort}` : undefined;
const quiet = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  fatal() {},
  enabled: () => false,
  setLevel() {},
  level: 'info',
  child: () => quiet,
} as unknown as RequestContext['log'];
const ctx: RequestContext = { requestId: 'bench', log: quiet, clientAddress: '127.0.0.1', protocol: 'http' };

function keepAliveAgent(): http.Agent {
  if (!proxyUrl) return new http.Agent({ keepAlive: true, timeout: 30_000, scheduling: 'lifo' });
  const { HttpsProxyAgent } = require('https-proxy-agent') as typeof import('https-proxy-agent');
  return new HttpsProxyAgent(proxyUrl, { keepAlive: true, timeout: 30_000, scheduling: 'lifo' }) as unknown as http.Agent;
}

function gateway(): Engine {
  const upstream = createUpstream(
    { URL: target, CACertificate: '', InsecureSkipVerify: false, Timeout: '30s' },
    proxyUrl ? { HTTP_PROXY: proxyUrl } : {},
  );
  const passThrough = createPassThrough(upstream);
  const forwarder = createForwarder(upstream);
  return {
    web: (req, res, body) => (body ? forwarder.forward(req, res, ctx, { body }) : passThrough.web(req, res, ctx)),
    ws: (req, socket, head) => passThrough.ws(req, socket, head, ctx),
  };
}

/** http-proxy, loaded only for this engine: it is no dependency of the gateway any more. */
function httpProxy(): Engine {
  type Proxy = {
    web(req: unknown, res: unknown, opts: object, cb: (err: Error) => void): void;
    ws(req: unknown, socket: unknown, head: unknown, opts: object, cb: (err: Error) => void): void;
    on(event: string, fn: (...args: never[]) => void): void;
    webPasses: { name: string }[];
  };
  const { createProxyServer } = require('http-proxy') as { createProxyServer(o: object): Proxy };
  const proxy = createProxyServer({ target, agent: keepAliveAgent(), changeOrigin: true, xfwd: false, ws: true });
  proxy.webPasses = proxy.webPasses.filter((pass) => pass.name !== 'deleteLength');
  proxy.on('proxyReq', (proxyReq: http.ClientRequest, _req: http.IncomingMessage, res: http.ServerResponse) =>
    res.on('close', () => {
      if (!res.writableFinished) proxyReq.destroy();
    }),
  );
  proxy.on('error', () => undefined);
  const failed = (res: http.ServerResponse) => () => (res.headersSent ? res.destroy() : res.writeHead(502).end());
  return {
    web(req, res, body) {
      if (Buffer.isBuffer(body)) req.headers['content-length'] = String(body.length);
      proxy.web(req, res, body ? { buffer: Buffer.isBuffer(body) ? Readable.from([body]) : body } : {}, failed(res));
    },
    ws: (req, socket, head) => proxy.ws(req, socket, head, {}, () => socket.destroy()),
  };
}

function httpAgent(): Engine {
  const agent = keepAliveAgent();
  return {
    web(req, res, body) {
      const headers = { ...req.headers, host: `127.0.0.1:${upstreamPort}` };
      if (Buffer.isBuffer(body)) headers['content-length'] = String(body.length);
      const out = http.request(
        { agent, hostname: '127.0.0.1', port: Number(upstreamPort), method: req.method, path: req.url, headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      out.on('error', () => (res.headersSent ? res.destroy() : res.writeHead(502).end()));
      res.on('close', () => {
        if (!res.writableFinished) out.destroy();
      });
      if (Buffer.isBuffer(body)) out.end(body);
      else (body ?? req).pipe(out);
    },
  };
}

const engine = ({ gateway, 'http-proxy': httpProxy, 'http-agent': httpAgent } as Record<string, () => Engine>)[engineName]();
const server = http.createServer((req, res) => {
  setForwardedHeaders(req, '127.0.0.1', 'http');
  if (!req.url?.startsWith('/buffered')) return engine.web(req, res);
  // /buffered-stream: the same body handed over as a stream (what the gateway's engine did first).
  const asStream = req.url === '/buffered-stream' && engineName === 'gateway';
  readBounded(req, 64 * 1024).then(
    (read) => {
      if (read.kind !== 'complete') return res.writeHead(413).end();
      if (!asStream) return engine.web(req, res, read.body);
      req.headers['content-length'] = String(read.body.length);
      delete req.headers['transfer-encoding'];
      engine.web(req, res, Readable.from([read.body]));
    },
    () => res.destroy(),
  );
});
server.keepAliveTimeout = 60_000;
server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
  setForwardedHeaders(req, '127.0.0.1', 'http');
  socket.on('error', () => socket.destroy());
  if (engine.ws) engine.ws(req, socket, head);
  else socket.destroy();
});
server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as { port: number }).port }));
// RSS read after a full collection (the bench forks with --expose-gc).
process.on('message', (m) => {
  if (m !== 'gc') return;
  global.gc?.();
  process.send?.('gc-done');
});
