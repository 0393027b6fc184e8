import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathnameOf } from '../http/route';
import { CHART_LIBRARY_DIR, INSTALL_ROOT } from '../config/install-root';
import type { Logger } from '../observe/log';
import { enableProcessMetrics, metricsRegistry } from '../observe/metrics';
import { startHistorySampler } from '../observe/status-page/history-sampler';
import { statusSnapshot, type StatusSources } from '../observe/status-page/status-snapshot';
import { formatAddress, parseListen } from '../server/listen-address';
import { isLoopbackAddress } from '../server/peer-address';
import {
  PUBLIC_ADMIN_PATHS,
  refuseForeignHost,
  refuseRemotePeer,
  STATUS_REMOTE_KEY,
  statusHostAllowed,
  statusPageExposure,
} from './status-access';

// Metrics.Listen: Prometheus /metrics, the status page and its JSON, on a listener of
// their own, never on the device listeners. It fails quietly: a port in use or any handler
// error is logged and retried, and device traffic never notices. Unauthenticated, as the
// product's: bind it to 127.0.0.1 or a trusted network. Off loopback only /metrics answers
// unless Metrics.StatusPageAllowRemote, and the status page only to a Host that names this
// listener (status-access.ts).

export interface AdminServerOptions {
  listen: string;
  log: Logger;
  sources: Omit<StatusSources, 'version'>;
  /** Metrics.StatusPageAllowRemote: the status page answers peers off loopback too. */
  statusPageAllowRemote?: boolean;
  /** Whether a peer (the socket's remote address) counts as local; tests replace it. */
  isLocalPeer?: (address: string | undefined) => boolean;
  /** Wait before trying again to listen after a failure. */
  retryMs?: number;
  /** Between two samples of the status page's history (one minute); tests shorten it. */
  historyIntervalMs?: number;
  /** Monotonic ms, for the refusal log's once a minute (tests pass their own). */
  clock?: () => number;
}

export interface AdminServer {
  /** Where it listens, once it does. */
  address(): AddressInfo | undefined;
  /** Resolves when it listens (tests); never rejects. */
  readonly ready: Promise<void>;
  /** SIGHUP: a changed Metrics.StatusPageAllowRemote applies to the next request. */
  setStatusPageAllowRemote(allow: boolean): void;
  close(): Promise<void>;
}

const ASSETS = join(INSTALL_ROOT, 'lib', 'observe', 'status-page', 'assets');
const PAGES: Record<string, { file: string; type: string }> = {
  '/': { file: join(ASSETS, 'index.html'), type: 'text/html; charset=utf-8' },
  '/status': { file: join(ASSETS, 'index.html'), type: 'text/html; charset=utf-8' },
  '/status/status.css': { file: join(ASSETS, 'status.css'), type: 'text/css; charset=utf-8' },
  '/status/status.js': { file: join(ASSETS, 'status.js'), type: 'text/javascript; charset=utf-8' },
  // The chart library, served from here: the box may have no Internet, and the CSP allows 'self' only.
  '/status/uPlot.iife.min.js': { file: join(CHART_LIBRARY_DIR, 'uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  '/status/uPlot.min.css': { file: join(CHART_LIBRARY_DIR, 'uPlot.min.css'), type: 'text/css; charset=utf-8' },
};
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(INSTALL_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

const SECURITY_HEADERS = {
  'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'no-store',
};

export function startAdminServer(opts: AdminServerOptions): AdminServer {
  const { log } = opts;
  const retryMs = opts.retryMs ?? 30_000;
  const assets = new Map<string, Buffer>();
  const asset = (file: string): Buffer => {
    let data = assets.get(file);
    if (!data) {
      data = readFileSync(file);
      assets.set(file, data);
    }
    return data;
  };
  enableProcessMetrics();
  const sources: StatusSources = { version: packageVersion(), ...opts.sources };
  const history = startHistorySampler({ intervalMs: opts.historyIntervalMs, log });
  const isLocalPeer = opts.isLocalPeer ?? isLoopbackAddress;
  let allowRemote = opts.statusPageAllowRemote ?? false;
  const warnIfExposed = (): void => {
    const exposure = statusPageExposure({ Enabled: true, Listen: opts.listen, StatusPageAllowRemote: allowRemote });
    if (exposure) log.warn(exposure);
  };
  warnIfExposed();
  // A LAN scan must not flood the log: one warning a minute, the rest at debug. The minute is
  // monotonic: a wall clock stepped back must not hold the next warning for the step's length.
  const clock = opts.clock ?? (() => performance.now());
  let lastRefusalWarning = -Infinity;
  const logRefusal = (message: string, fields: Record<string, unknown>): void => {
    const now = clock();
    if (now - lastRefusalWarning >= 60_000) {
      lastRefusalWarning = now;
      log.warn(message, fields);
    } else log.debug(message, fields);
  };
  let listenHost: string | undefined;
  try {
    listenHost = parseListen(opts.listen).host;
  } catch {
    listenHost = undefined; // tryListen logs the bad setting
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.warn('admin listener: request failed', { path: pathnameOf(req), err: err as Error });
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end('internal error\n');
    });
  });
  server.on('clientError', (_err, socket) => socket.destroy());

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = pathnameOf(req);
    const isPublic = PUBLIC_ADMIN_PATHS.has(path);
    if (!allowRemote && !isPublic && !isLocalPeer(req.socket.remoteAddress)) {
      logRefusal('status page refused to a peer off loopback', { client: req.socket.remoteAddress, path, key: STATUS_REMOTE_KEY });
      refuseRemotePeer(res, SECURITY_HEADERS);
      return;
    }
    if (!isPublic && !statusHostAllowed(req.headers.host, listenHost, allowRemote)) {
      // The Host is not logged: it is whatever the requesting page chose.
      logRefusal('status page refused: the Host names another site (DNS rebinding?)', { client: req.socket.remoteAddress, path });
      refuseForeignHost(res, SECURITY_HEADERS, allowRemote);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (path === '/metrics') {
      const text = await metricsRegistry.metrics();
      res
        .writeHead(200, { 'Content-Type': metricsRegistry.contentType, 'Cache-Control': 'no-store' })
        .end(req.method === 'HEAD' ? undefined : text);
      return;
    }
    const json =
      path === '/api/status'
        ? statusSnapshot(sources)
        : path === '/api/status/history'
          ? history.ring.toJSON(history.intervalMs)
          : undefined;
    if (json !== undefined) {
      const body = JSON.stringify(json);
      res
        .writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', ...SECURITY_HEADERS })
        .end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    const page = PAGES[path];
    if (page) {
      const data = asset(page.file);
      res
        .writeHead(200, { 'Content-Type': page.type, 'Content-Length': data.length, ...SECURITY_HEADERS })
        .end(req.method === 'HEAD' ? undefined : data);
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
  }

  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let failures = 0;
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));

  const tryListen = (): void => {
    let host: string | undefined;
    let port: number;
    try {
      ({ host, port } = parseListen(opts.listen));
    } catch (err) {
      log.error('metrics listener disabled: bad Metrics.Listen', { listen: opts.listen, err: err as Error });
      return;
    }
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      failures++;
      // First failure at error level, repeats at debug: an occupied port must not flood the log.
      const fields = { listen: opts.listen, err: err.code ?? err.message, retry_in_ms: retryMs };
      if (failures === 1) log.error('metrics listener cannot listen; device traffic is not affected, retrying', fields);
      else log.debug('metrics listener still cannot listen', fields);
      if (!closed) timer = setTimeout(tryListen, retryMs).unref();
    };
    const onListening = (): void => {
      server.off('error', onError);
      server.on('error', (err) => log.warn('metrics listener error', { err }));
      const a = server.address() as AddressInfo;
      log.info('metrics and status page listening', { address: formatAddress(a.address, a.port) });
      markReady();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  };
  tryListen();

  return {
    address: () => (server.listening ? (server.address() as AddressInfo) : undefined),
    ready,
    setStatusPageAllowRemote(allow) {
      if (allow === allowRemote) return;
      allowRemote = allow;
      log.info(`reload: ${STATUS_REMOTE_KEY} changed`, { status_page: allow ? 'every peer' : 'loopback peers only' });
      warnIfExposed();
    },
    async close() {
      closed = true;
      clearTimeout(timer);
      history.stop();
      if (!server.listening) return;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
