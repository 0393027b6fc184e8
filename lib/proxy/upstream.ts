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

// The one module that knows how to reach things upstream: the Mender server and the
// artifact origins. TLS trust (UpstreamServer.CACertificate added to the system roots,
// InsecureSkipVerify) and the outbound proxy (HTTPS_PROXY/HTTP_PROXY/NO_PROXY, read by
// proxy-from-env, CONNECT tunnels) apply to both.

export interface Upstream {
  /** Scheme, host and port of UpstreamServer.URL (its path is ignored, as the product does). */
  readonly target: URL;
  /** Keep-alive agent for the Mender server. */
  readonly agent: http.Agent;
  /**
   * undici pool for device requests to the Mender server (forward.ts): ≈1.7× the request rate
   * of http.request here. Absent when an outbound proxy applies (the agent tunnels then).
   */
  readonly pool?: Dispatcher;
  /**
   * A new connection to the Mender server (TCP or TLS with the upstream trust settings), for
   * a WebSocket tunnel (websocket-tunnel.ts). Absent when an outbound proxy applies.
   */
  readonly dial?: () => Socket;
  /** No response headers within this many ms → 504. */
  readonly timeoutMs: number;
  /** Agent for an artifact origin (presigned storage URL); undefined only in tests with no TLS. */
  originAgent(url: URL): http.Agent;
  close(): void;
}

// Below the usual 60 s idle timeout of upstream load balancers, so we never reuse a socket
// the far end is closing (nodejs/node#47130).
const IDLE_SOCKET_MS = 30_000;

export function createUpstream(settings: GatewayConfig['UpstreamServer'], env: NodeJS.ProcessEnv = process.env): Upstream {
  const target = new URL(settings.URL);
  const tls: https.AgentOptions = { rejectUnauthorized: !settings.InsecureSkipVerify };
  if (settings.CACertificate) {
    tls.ca = [...rootCertificates, readFileSync(settings.CACertificate, 'utf8')];
  }
  const agents = new Map<string, http.Agent>();

  // The proxy decision depends only on scheme and host: made once per origin, not per fetch.
  const agentByOrigin = new Map<string, http.Agent>();

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
  // journal uses only the agent.
  const direct = !proxyFor(origin, env);
  let pool: Dispatcher | undefined;
  const makePool = (): Dispatcher => {
    const { Pool } = require('undici') as typeof import('undici');
    return new Pool(origin.origin, {
      // No headers (or no body byte) for this long → 504, as the agent's socket timeout does.
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      keepAliveMaxTimeout: IDLE_SOCKET_MS,
      connect: origin.protocol === 'https:' ? { rejectUnauthorized: tls.rejectUnauthorized, ...(tls.ca ? { ca: tls.ca } : {}) } : undefined,
    });
  };
  const port = Number(origin.port || (origin.protocol === 'https:' ? 443 : 80));
  const host = origin.hostname.replace(/^\[|\]$/g, '');
  const dial =
    origin.protocol === 'https:'
      ? () => tlsConnect({ host, port, servername: isIP(host) ? undefined : host, rejectUnauthorized: tls.rejectUnauthorized, ...(tls.ca ? { ca: tls.ca } : {}) })
      : () => netConnect({ host, port });
  return {
    target: origin,
    agent: agentFor(target),
    ...(direct ? { dial } : {}),
    get pool() {
      if (direct) pool ??= makePool();
      return pool;
    },
    timeoutMs,
    originAgent: agentFor,
    close() {
      for (const agent of agents.values()) agent.destroy();
      pool?.destroy().catch(() => undefined);
    },
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
