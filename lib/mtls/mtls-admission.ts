import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type https from 'node:https';
import type { Socket } from 'node:net';
import { createSecureContext, type TLSSocket } from 'node:tls';
import type { GatewayConfig } from '../config/types';
import { parseDuration } from '../config/parse-duration';
import { refuseSocket, sendJsonError } from '../http/reply-error';
import { DEVICE_TIMEOUTS } from '../server/listeners';
import type { Handler, RequestContext } from '../http/route';
import type { Logger } from '../observe/log';
import type { Upstream } from '../proxy/upstream';
import {
  certificateOf,
  notAfterOf,
  parseCertificates,
  serialOf,
  verifyClient,
  verifyPeerChain,
  type ClientIdentityPolicy,
} from './client-identity';
import { watchSerialBlocklist } from './serial-blocklist';
import { watchRevocationList } from './revocation-list';
import { createAuthHandler } from './auth-route';
import { createManagementSession, type ManagementSession } from './management-session';
import { PreauthorizationCache } from './preauthorization-cache';
import { createPreauthorizer } from './preauthorize';
import { mtlsMetrics } from '../observe/metrics';
import { certificateExpiry } from '../observe/certificate-expiry';

// Features.mTLS as one piece the gateway plugs in: TLS options for the HTTPS
// listener, a check on every connection and request, and the auth_requests route that
// preauthorizes devices upstream.

export interface MtlsAdmission {
  /** Merged into the HTTPS listener's options: request and verify client certificates. */
  readonly tlsOptions: https.ServerOptions;
  /** Watch an HTTPS listener: refuse at the handshake, track open connections, rotate its ticket keys on reloads. */
  attach(server: https.Server): void;
  /** Every request: false when it was refused (answered 401/403 JSON). */
  admitRequest(req: IncomingMessage, res: ServerResponse, ctx: RequestContext): boolean;
  /** Every upgrade: false when it was refused (socket answered and closed). */
  admitUpgrade(req: IncomingMessage, socket: Socket, ctx: RequestContext): boolean;
  /** POST auth_requests: admitted by certificate, preauthorized upstream (auth-route.ts). */
  readonly authHandler: Handler;
  readonly session: ManagementSession;
  /**
   * SIGHUP: read the CA file again, follow a changed BlacklistPath or CRLPath, and re-verify every
   * open connection. Returns the new CA PEM for the listeners' TLS options, or undefined when
   * the file is unusable (the old CA stays).
   */
  reload(next: GatewayConfig['Features']['mTLS']): string | undefined;
  /** The CA `reload` returned is now in the listeners' secure context (new handshakes use it). */
  caApplied(): void;
  close(): void;
}

// A handshake that began before the listeners got a new CA completes with the old one: for
// this long after the swap (the listeners' TLS handshake timeout, and a margin; monotonic, so a
// clock step neither ends it early nor stretches it), chains are verified by hand too.
const HANDSHAKE_WINDOW_MS = DEVICE_TIMEOUTS.handshakeMs + 5_000;
// Open connections re-verified per turn of the event loop: thousands of tunnels do not stall it.
const RECHECK_BATCH = 500;
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface MtlsAdmissionOptions {
  /** Monotonic ms, for the window after a CA swap (tests pass their own). */
  clock?: () => number;
}

export function createMtlsAdmission(
  settings: GatewayConfig['Features']['mTLS'],
  upstream: Upstream,
  log: Logger,
  options: MtlsAdmissionOptions = {},
): MtlsAdmission {
  const clock = options.clock ?? (() => performance.now());
  const caPem = readFileSync(settings.CACertificate, 'utf8');
  // The CA's dates are this admission's (a gateway restarted in-process makes another).
  const owner = {};
  certificateExpiry.certificate('client_ca', settings.CACertificate, caPem, log, 'earliest', owner);
  const servers = new Set<https.Server>();
  // Every admitted connection of the HTTPS listeners while it is open; the tunnels among them.
  // Bounded by the open sockets (each leaves at its 'close', or here when refused later), so by
  // the open-file limit: no cap or age of its own.
  const open = new Set<TLSSocket>();
  const tunnels = new WeakSet<TLSSocket>();
  const rotateTicketKeys = (): void => {
    // A resumed session is not re-verified at its handshake: after a change, no old ticket may resume.
    for (const server of servers) server.setTicketKeys(randomBytes(48));
  };
  const changed = (cause: string) => (): void => {
    rotateTicketKeys();
    recheckOpen(cause);
  };
  const policy: ClientIdentityPolicy = {
    trusted: parseCertificates(caPem),
    allowExpired: settings.InsecureSkipClientExpireAfter,
    verifyByHandUntil: 0,
    clock,
  };
  // The CA PEM connections are checked against, and the one in the listeners' secure context.
  const ca = { checked: caPem, inTls: caPem };
  const files = { blocklist: settings.BlacklistPath, crl: settings.CRLPath };
  if (files.blocklist) policy.blocklist = watchSerialBlocklist(files.blocklist, log, changed('blocklist'));
  try {
    if (files.crl) policy.revoked = watchRevocationList(files.crl, () => policy.trusted, log, changed('crl'));
  } catch (err) {
    policy.blocklist?.close();
    certificateExpiry.forget('client_ca', owner);
    throw err;
  }
  if (settings.InsecureSkipClientExpireAfter) {
    log.warn('mTLS: expired client certificates are accepted (InsecureSkipClientExpireAfter); not for production');
  }

  // Re-verification of open connections: on a change only (never a timer per socket), in
  // batches; a change during a pass runs another one after it.
  let pending: { cause: string; tunnelsOnly: boolean } | undefined;
  let passRunning = false;
  function recheckOpen(cause: string, tunnelsOnly = false): void {
    // A full pass covers a tunnels-only one.
    if (!pending || (pending.tunnelsOnly && !tunnelsOnly)) pending = { cause, tunnelsOnly };
    if (passRunning) return;
    passRunning = true;
    const { cause: why, tunnelsOnly: onlyTunnels } = pending;
    pending = undefined;
    const sockets = [...open];
    let i = 0;
    let closed = 0;
    let soonest = Infinity;
    const step = (): void => {
      for (const end = Math.min(i + RECHECK_BATCH, sockets.length); i < end; i++) {
        const socket = sockets[i];
        const tunnel = tunnels.has(socket);
        if (socket.destroyed || (onlyTunnels && !tunnel)) continue;
        const verdict = verifyClient(socket, policy);
        if (verdict.ok) {
          if (tunnel) soonest = Math.min(soonest, notAfterOf(socket) ?? Infinity);
          continue;
        }
        closed++;
        mtlsMetrics.closed(verdict.reason);
        log.warn('connection closed: client certificate no longer admitted', {
          client: socket.remoteAddress,
          serial: serialOf(socket),
          reason: verdict.reason,
          after: why,
          websocket: tunnel,
        });
        open.delete(socket);
        socket.destroy();
      }
      if (i < sockets.length) return void setImmediate(step);
      passRunning = false;
      log.info('mTLS: open connections verified again', { after: why, connections: sockets.length, closed });
      armExpiry(soonest);
      if (pending) recheckOpen(pending.cause, pending.tunnelsOnly);
    };
    step();
  }

  // A tunnel makes no request after its upgrade: its certificate's NotAfter is watched by one
  // timer, set for the soonest of them.
  let expiryTimer: NodeJS.Timeout | undefined;
  let expiryAt = Infinity;
  function armExpiry(at: number): void {
    if (settings.InsecureSkipClientExpireAfter || !(at < expiryAt)) return;
    clearTimeout(expiryTimer);
    expiryAt = at;
    // NotAfter has whole seconds; a second later the certificate is expired for sure.
    const delay = Math.min(Math.max(at - Date.now() + 1000, 0), MAX_TIMER_MS);
    expiryTimer = setTimeout(() => {
      expiryAt = Infinity;
      recheckOpen('expiry', true);
    }, delay);
    expiryTimer.unref();
  }

  const session = createManagementSession({ upstream, username: settings.MenderUsername, password: settings.MenderPassword, log });
  const cache = settings.EnableCache ? new PreauthorizationCache(parseDuration(settings.CacheLifetime)) : undefined;
  const preauthorizer = createPreauthorizer({ upstream, session, cache, log, allowKeyReplacement: settings.AllowKeyReplacement });
  const authHandler = createAuthHandler({
    upstream,
    certificateOf: (socket) => certificateOf(socket, policy),
    preauthorizer,
    requireKeyMatchesCertificate: settings.RequireAuthKeyMatchesCertificate,
    identityBinding: settings.IdentityAttribute
      ? { attribute: settings.IdentityAttribute, field: settings.IdentityCertificateField }
      : undefined,
  });
  log.info('mTLS: admitting devices by client certificate', {
    ca_certificates: policy.trusted.length,
    blocklist: settings.BlacklistPath || undefined,
    crl: settings.CRLPath || undefined,
    preauth_cache: cache ? settings.CacheLifetime : 'off',
    key_must_match_certificate: settings.RequireAuthKeyMatchesCertificate,
  });

  /** SIGHUP with another BlacklistPath or CRLPath: the new file is watched from now on. */
  function follow<T extends { close(): void }>(
    what: 'blocklist' | 'crl',
    key: string,
    path: string,
    start: (path: string) => T,
    set: (watcher: T | undefined) => void,
  ): boolean {
    if (path === files[what]) return false;
    if (path === '') {
      set(undefined);
      log.warn(`reload: ${key} is now empty: that list no longer applies`, { was: files[what] });
      files[what] = path;
      return true;
    }
    try {
      set(start(path));
    } catch (err) {
      log.error(`reload: ${key} changed but the new file is unusable, keeping the one in use`, {
        path,
        in_use: files[what] || 'none',
        reason: (err as Error).message,
      });
      return false;
    }
    log.info(`reload: ${key} changed, now watching the new file`, { path, was: files[what] || 'none' });
    files[what] = path;
    return true;
  }

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
        if (verdict.ok) {
          open.add(socket);
          socket.once('close', () => open.delete(socket));
          return;
        }
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
      const tls = req.socket as TLSSocket;
      const verdict = verifyClient(tls, policy);
      if (verdict.ok) {
        // The tunnel rides this socket: closing it (a revocation) closes the upstream side too.
        tunnels.add(tls);
        armExpiry(notAfterOf(tls) ?? Infinity);
        return true;
      }
      mtlsMetrics.refused(verdict.reason);
      ctx.log.warn('websocket refused: client certificate', { reason: verdict.reason, client: ctx.clientAddress });
      refuseSocket(
        socket,
        verdict.status,
        verdict.status === 403 ? 'client certificate revoked' : 'client certificate required',
        ctx.requestId,
      );
      return false;
    },
    authHandler,
    session,
    reload(next) {
      let changes = 0;
      if (
        follow(
          'blocklist',
          'Features.mTLS.BlacklistPath',
          next.BlacklistPath,
          (path) => watchSerialBlocklist(path, log, changed('blocklist')),
          (watcher) => {
            policy.blocklist?.close();
            policy.blocklist = watcher;
          },
        )
      )
        changes++;
      const pem = readCa(next.CACertificate);
      const caChanged = pem !== undefined && pem !== ca.checked;
      if (pem !== undefined && caChanged) {
        ca.checked = pem;
        policy.trusted = parseCertificates(pem);
        // Until the listeners have it, OpenSSL's verdict is the old CA's.
        policy.verifyByHandUntil = Infinity;
        changes++;
        log.info('reload: mTLS CA loaded: open connections are verified against it again', {
          path: next.CACertificate,
          ca_certificates: policy.trusted.length,
        });
        certificateExpiry.certificate('client_ca', next.CACertificate, pem, log, 'earliest', owner);
      }
      const crlFollowed = follow(
        'crl',
        'Features.mTLS.CRLPath',
        next.CRLPath,
        (path) => watchRevocationList(path, () => policy.trusted, log, changed('crl')),
        (watcher) => {
          policy.revoked?.close();
          policy.revoked = watcher;
        },
      );
      if (crlFollowed) changes++;
      // The CRL must verify against the CA now in use (a new file was just verified).
      else if (caChanged) policy.revoked?.recheck();
      if (changes > 0) changed('reload')();
      return ca.checked !== ca.inTls ? ca.checked : undefined;
    },
    caApplied() {
      ca.inTls = ca.checked;
      policy.verifyByHandUntil = clock() + HANDSHAKE_WINDOW_MS;
    },
    close() {
      certificateExpiry.forget('client_ca', owner);
      clearTimeout(expiryTimer);
      policy.blocklist?.close();
      policy.revoked?.close();
    },
  };

  function readCa(path: string): string | undefined {
    try {
      const pem = readFileSync(path, 'utf8');
      if (parseCertificates(pem).length === 0) throw new Error('no PEM certificate in the file');
      // What the listeners will be given must be usable by TLS.
      createSecureContext({ ca: pem });
      return pem;
    } catch (err) {
      log.error('reload: mTLS CA not replaced, keeping the one in use', { path, reason: (err as Error).message });
      return undefined;
    }
  }
}
