import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, rootCertificates } from 'node:tls';
import type { HttpsProxyAgent } from 'https-proxy-agent';
import { getProxyForUrl } from 'proxy-from-env';
import type { Dispatcher } from 'undici';
import type { GatewayConfig } from '../config/types';
import { parseDuration } from '../config/parse-duration';
import { BoundedMap } from '../state/bounded-map';

// The one module that knows how to reach things upstream: the Mender server and the
// artifact origins. TLS trust (UpstreamServer.CACertificate added to the system roots,
// InsecureSkipVerify) and the outbound proxy (HTTPS_PROXY/HTTP_PROXY/NO_PROXY, read by
// proxy-from-env, CONNECT tunnels) apply to both.

export interface Upstream {
  /** Scheme, host and port of UpstreamServer.URL (its path is ignored, as the product does). */
  readonly target: URL;
  /**
   * Keep-alive agent for the Mender server, for the gateway's own small calls (journal replay
   * in the cluster primary, which must not load undici; mTLS management calls; check-config).
   */
  readonly agent: http.Agent;
  /**
   * undici dispatcher for device requests to the Mender server (forward.ts): a Pool, or a
   * ProxyAgent (CONNECT tunnels) where an outbound proxy applies. Made at first use.
   */
  readonly pool: Dispatcher;
  /**
   * A new connection to the Mender server (TCP or TLS with the upstream trust settings; through a
   * CONNECT tunnel where an outbound proxy applies), for a WebSocket (websocket-tunnel.ts).
   */
  readonly dial: () => Socket | Promise<Socket>;
  /** No response headers within this many ms → 504. */
  readonly timeoutMs: number;
  /** UpstreamServer.CACertificate as read at start (its dates are a metric); undefined when not set. */
  readonly caPem?: string;
  /** Agent for an artifact origin (presigned storage URL); undefined only in tests with no TLS. */
  originAgent(url: URL): http.Agent;
  /** Artifact origins whose agent is remembered, for the tests of the bound. */
  readonly originsKnown: number;
  close(): void;
}

// Below the usual 60 s idle timeout of upstream load balancers, so we never reuse a socket
// the far end is closing (nodejs/node#47130).
const IDLE_SOCKET_MS = 30_000;
const ORIGINS = { maxEntries: 1024, maxAgeMs: 3600_000 };

export function createUpstream(
  settings: GatewayConfig['UpstreamServer'],
  env: NodeJS.ProcessEnv = process.env,
  /** Ages the remembered origins (monotonic; tests pass their own). */
  clock?: () => number,
): Upstream {
  const target = new URL(settings.URL);
  const tls: https.AgentOptions = { rejectUnauthorized: !settings.InsecureSkipVerify };
  const caPem = settings.CACertificate ? readFileSync(settings.CACertificate, 'utf8') : undefined;
  if (caPem) tls.ca = [...rootCertificates, caPem];
  // One agent per scheme and outbound proxy, shared by every origin: at most a handful (the
  // proxies come from the environment, fixed for the process). Each keeps a socket pool per host,
  // which Node drops once its sockets close (idle ones after IDLE_SOCKET_MS).
  const agents = new Map<string, http.Agent>();

  // The proxy decision depends only on scheme and host: made once per origin, not per fetch. A
  // store with a host per bucket, or presigned links to many hosts, brings new origins for
  // months: the decisions of the last hour are kept, at most ORIGINS (~700 B each, ~0.7 MB). A
  // dropped one is decided again; its agent is shared, so nothing is closed.
  const agentByOrigin = new BoundedMap<string, http.Agent>(ORIGINS, clock);

  function agentFor(url: URL): http.Agent {
    const origin = `${url.protocol}//${url.host}`;
    const known = agentByOrigin.get(origin);
    if (known) return known;
    const proxy = proxyFor(url, env);
    const key = `${url.protocol}|${proxy ?? ''}`;
    let agent = agents.get(key);
    if (!agent) {
      const common = { keepAlive: true, timeout: IDLE_SOCKET_MS, scheduling: 'lifo' as const };
      if (proxy) agent = tunnelAgent(proxy, tls, common) as unknown as http.Agent;
      else agent = url.protocol === 'https:' ? new https.Agent({ ...common, ...tls }) : new http.Agent(common);
      agents.set(key, agent);
    }
    agentByOrigin.set(origin, agent);
    return agent;
  }

  const timeoutMs = parseDuration(settings.Timeout);
  const origin = new URL(`${target.protocol}//${target.host}`);
  // Made (and undici loaded, ~12 MB of RSS) on first use: the cluster primary replaying the
  // journal uses only the agent. NO_PROXY is proxyFor's to decide, not undici's.
  const proxy = proxyFor(origin, env);
  const upstreamTls = { rejectUnauthorized: tls.rejectUnauthorized, ...(tls.ca ? { ca: tls.ca } : {}) };
  const secure = origin.protocol === 'https:';
  let pool: Dispatcher | undefined;
  const makePool = (): Dispatcher => {
    const { Pool, ProxyAgent } = require('undici') as typeof import('undici');
    const common = {
      // No headers (or no body byte) for this long → 504, as the agent's socket timeout does.
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      keepAliveMaxTimeout: IDLE_SOCKET_MS,
    };
    if (proxy) return new ProxyAgent({ uri: proxy, ...common, requestTls: upstreamTls });
    return new Pool(origin.origin, { ...common, connect: secure ? upstreamTls : undefined });
  };
  const port = Number(origin.port || (secure ? 443 : 80));
  const host = origin.hostname.replace(/^\[|\]$/g, '');
  const servername = isIP(host) ? undefined : host;
  let tunnels: ReturnType<typeof connectTunnels> | undefined;
  const dial = proxy
    ? async (): Promise<Socket> => {
        tunnels ??= connectTunnels(proxy, timeoutMs);
        const socket = await tunnels.open(`${origin.hostname}:${port}`);
        return secure ? tlsConnect({ socket, servername, ...upstreamTls }) : socket;
      }
    : secure
      ? () => tlsConnect({ host, port, servername, ...upstreamTls })
      : () => netConnect({ host, port });
  return {
    target: origin,
    agent: agentFor(target),
    dial,
    get pool() {
      pool ??= makePool();
      return pool;
    },
    timeoutMs,
    caPem,
    originAgent: agentFor,
    get originsKnown() {
      return agentByOrigin.size;
    },
    close() {
      for (const agent of agents.values()) agent.destroy();
      pool?.destroy().catch(() => undefined);
      tunnels?.close();
    },
  };
}

/**
 * CONNECT tunnels through the outbound proxy, for WebSockets: undici's Dispatcher#connect (as its
 * ProxyAgent opens its own), so no HTTP parsing of our own. Credentials in the proxy URL become
 * Proxy-Authorization.
 */
function connectTunnels(proxyUrl: string, timeoutMs: number): { open(authority: string): Promise<Socket>; close(): void } {
  const { Pool } = require('undici') as typeof import('undici');
  const url = new URL(proxyUrl);
  const headers: Record<string, string> = {};
  if (url.username)
    headers['proxy-authorization'] =
      `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
  const proxies = new Pool(url.origin, { headersTimeout: timeoutMs, connectTimeout: timeoutMs });
  return {
    async open(authority) {
      let answer: Dispatcher.ConnectData;
      try {
        answer = await proxies.connect({ path: authority, headers: { ...headers, host: authority } });
      } catch (err) {
        // A proxy silent past UpstreamServer.Timeout: a timeout, as the direct dial reports it.
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT')
          throw Object.assign(new Error('outbound proxy timed out'), { code: 'ETIMEDOUT' });
        throw err;
      }
      if (answer.statusCode !== 200) {
        answer.socket.destroy();
        throw Object.assign(new Error(`outbound proxy answered ${answer.statusCode} to CONNECT`), { code: 'EPROXY' });
      }
      return answer.socket as Socket;
    },
    close: () => void proxies.destroy().catch(() => undefined),
  };
}

/**
 * https-proxy-agent takes the target's TLS options from each request, not from the agent:
 * add the upstream trust settings to every tunnelled connection. The class is made (and
 * https-proxy-agent loaded) only where an outbound proxy applies.
 */
function tunnelAgent(proxy: string, tls: https.AgentOptions, options: http.AgentOptions): HttpsProxyAgent<string> {
  const { HttpsProxyAgent: Base } = require('https-proxy-agent') as typeof import('https-proxy-agent');
  class TunnelAgent extends Base<string> {
    override connect(req: http.ClientRequest, opts: Parameters<HttpsProxyAgent<string>['connect']>[1]) {
      return super.connect(req, { ...opts, ...tls } as typeof opts);
    }
  }
  return new TunnelAgent(proxy, options);
}

/** The proxy URL for a target, honouring NO_PROXY (comma- or space-separated, as Go and curl do). */
export function proxyFor(url: URL, env: NodeJS.ProcessEnv): string | undefined {
  // proxy-from-env reads process.env; a given environment (tests) is swapped in for the call.
  if (env === process.env) return getProxyForUrl(url.href) || undefined;
  const saved = process.env;
  process.env = env;
  try {
    const proxy = getProxyForUrl(url.href);
    return proxy || undefined;
  } finally {
    process.env = saved;
  }
}
