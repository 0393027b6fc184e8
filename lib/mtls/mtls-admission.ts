import { randomBytes, type X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type https from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { GatewayConfig } from '../config/types';
import { parseDuration } from '../config/parse-duration';
import { rawJsonResponse, sendJsonError } from '../http/reply-error';
import type { RequestContext, Route } from '../http/route';
import type { Logger } from '../observe/log';
import type { Upstream } from '../proxy/upstream';
import { parseCertificates, verifyClient, verifyPeerChain, type ClientIdentityPolicy } from './client-identity';
import { watchSerialBlocklist } from './serial-blocklist';
import { watchRevocationList } from './revocation-list';
import type { IssuedTokens } from './issued-tokens';
import { createAuthRoute } from './auth-route';
import { createManagementSession, type ManagementSession } from './management-session';
import { PreauthorizationCache } from './preauthorization-cache';
import { createPreauthorizer } from './preauthorize';
import { mtlsMetrics } from '../observe/metrics';

// Features.mTLS as one piece the gateway plugs in: TLS options for the HTTPS
// listener, a check on every connection and request, and the auth_requests route that
// preauthorizes devices upstream.

export interface MtlsAdmission {
  /** Merged into the HTTPS listener's options: request and verify client certificates. */
  readonly tlsOptions: https.ServerOptions;
  /** Watch an HTTPS listener: refuse at the handshake, rotate its ticket keys on reloads. */
  attach(server: https.Server): void;
  /** Every request: false when it was refused (answered 401/403 JSON). */
  admitRequest(req: IncomingMessage, res: ServerResponse, ctx: RequestContext): boolean;
  /** Every upgrade: false when it was refused (socket answered and closed). */
  admitUpgrade(req: IncomingMessage, socket: Socket, ctx: RequestContext): boolean;
  readonly route: Route;
  readonly session: ManagementSession;
  /**
   * SIGHUP: read the CA file again. Returns the new PEM for the listeners' TLS options, or
   * undefined when the file is unreadable or holds no certificate (the old CA stays).
   */
  reloadCa(path: string): string | undefined;
  close(): void;
}

export function createMtlsAdmission(
  settings: GatewayConfig['Features']['mTLS'],
  upstream: Upstream,
  log: Logger,
  outageTokens?: IssuedTokens,
): MtlsAdmission {
  const caPem = readFileSync(settings.CACertificate, 'utf8');
  const servers = new Set<https.Server>();
  const rotateTicketKeys = (): void => {
    // A resumed session is not re-verified: after a revocation, no old ticket may resume.
    for (const server of servers) server.setTicketKeys(randomBytes(48));
  };
  const blocklist = settings.BlacklistPath ? watchSerialBlocklist(settings.BlacklistPath, log, rotateTicketKeys) : undefined;
  const policy: ClientIdentityPolicy = {
    trusted: parseCertificates(caPem),
    allowExpired: settings.InsecureSkipClientExpireAfter,
    blocklist,
  };
  if (settings.CRLPath) policy.revoked = watchRevocationList(settings.CRLPath, () => policy.trusted, log, rotateTicketKeys);
  if (settings.InsecureSkipClientExpireAfter) {
    log.warn('mTLS: expired client certificates are accepted (InsecureSkipClientExpireAfter); not for production');
  }

  const session = createManagementSession({ upstream, username: settings.MenderUsername, password: settings.MenderPassword, log });
  const cache = settings.EnableCache ? new PreauthorizationCache(parseDuration(settings.CacheLifetime)) : undefined;
  const preauthorizer = createPreauthorizer({ upstream, session, cache, log, allowKeyReplacement: settings.AllowKeyReplacement });
  const route = createAuthRoute({
    upstream,
    preauthorizer,
    requireKeyMatchesCertificate: settings.RequireAuthKeyMatchesCertificate,
    identityBinding: settings.IdentityAttribute
      ? { attribute: settings.IdentityAttribute, field: settings.IdentityCertificateField }
      : undefined,
    outageTokens,
  });
  log.info('mTLS: admitting devices by client certificate', {
    ca_certificates: policy.trusted.length,
    blocklist: settings.BlacklistPath || undefined,
    crl: settings.CRLPath || undefined,
    preauth_cache: cache ? settings.CacheLifetime : 'off',
    key_must_match_certificate: settings.RequireAuthKeyMatchesCertificate,
  });

  return {
    // OpenSSL verifies the chain, but the verdict is ours, right after the handshake and before
    // any HTTP byte is read: with rejectUnauthorized Node drops the connection without saying
    // why, and OpenSSL cannot be told to skip only NotAfter (InsecureSkipClientExpireAfter).
    tlsOptions: { requestCert: true, rejectUnauthorized: false, ca: caPem },
    attach(server) {
      servers.add(server);
      server.setTicketKeys(randomBytes(48));
      // Prepended: runs before the HTTP server's own listener starts reading requests.
      server.prependListener('secureConnection', (socket: TLSSocket) => {
        const verdict = verifyPeerChain(socket, policy);
        if (verdict.ok) return;
        mtlsMetrics.refused(verdict.reason);
        log.warn('TLS client refused', { client: socket.remoteAddress, reason: verdict.reason });
        socket.destroy();
      });
      server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: Socket) => {
        mtlsMetrics.refused(err.code ?? err.message);
        log.warn('TLS client refused', { client: socket.remoteAddress, reason: err.code ?? err.message });
      });
    },
    admitRequest(req, res, ctx) {
      if (ctx.protocol !== 'https') return true;
      const verdict = verifyClient(req.socket as TLSSocket, policy);
      if (verdict.ok) return true;
      mtlsMetrics.refused(verdict.reason);
      ctx.log.warn('request refused: client certificate', { reason: verdict.reason, client: ctx.clientAddress });
      req.resume();
      sendJsonError(
        res,
        verdict.status,
        verdict.status === 403 ? 'client certificate revoked' : 'client certificate required',
        ctx.requestId,
        { Connection: 'close' },
      );
      return false;
    },
    admitUpgrade(req, socket, ctx) {
      if (ctx.protocol !== 'https') return true;
      const verdict = verifyClient(req.socket as TLSSocket, policy);
      if (verdict.ok) return true;
      mtlsMetrics.refused(verdict.reason);
      ctx.log.warn('websocket refused: client certificate', { reason: verdict.reason, client: ctx.clientAddress });
      socket.end(
        rawJsonResponse(
          verdict.status,
          verdict.status === 403 ? 'client certificate revoked' : 'client certificate required',
          ctx.requestId,
        ),
      );
      return false;
    },
    route,
    session,
    reloadCa(path) {
      let pem: string;
      let trusted: X509Certificate[];
      try {
        pem = readFileSync(path, 'utf8');
        trusted = parseCertificates(pem);
        if (trusted.length === 0) throw new Error('no PEM certificate in the file');
      } catch (err) {
        log.error('reload: mTLS CA not replaced, keeping the one in use', { path, reason: (err as Error).message });
        return undefined;
      }
      policy.trusted = trusted;
      policy.revoked?.recheck();
      rotateTicketKeys();
      log.info('reload: mTLS CA replaced', { path, ca_certificates: trusted.length });
      return pem;
    },
    close() {
      blocklist?.close();
      policy.revoked?.close();
    },
  };
}
