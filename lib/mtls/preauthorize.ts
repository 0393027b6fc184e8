import { GatewayError } from '../http/gateway-error';
import type { Logger } from '../observe/log';
import type { Upstream } from '../proxy/upstream';
import { preauthorizationKey, type AuthRequest } from './auth-request';
import { errorText, managementCall } from './management-call';
import type { ManagementSession } from './management-session';
import type { PreauthorizationCache } from './preauthorization-cache';

// Make sure deviceauth holds a preauthorized auth set for this identity and key, so the
// device's own auth request that follows is accepted (device-protocol.md §8, §11). `force`
// turns an existing (pending, rejected, other-key) device into a preauthorized one: 201.
// 409 can only come from a server without `force`, and then the set may already be accepted.

export const PREAUTHORIZE_PATH = '/api/management/v2/devauth/devices';

/** Where the request came from, for the calls made on its behalf (gateway 2.1.0 MEN-9042). */
export interface OnBehalfOf {
  clientAddress: string;
  requestId: string;
}

export interface Preauthorizer {
  ensure(request: AuthRequest, device: OnBehalfOf): Promise<void>;
  /** The server refused the device after all: preauthorize again next time. */
  forget(request: AuthRequest): void;
}

export interface PreauthorizerOptions {
  upstream: Upstream;
  session: ManagementSession;
  cache?: PreauthorizationCache;
  log: Logger;
}

/** The preauthorization the gateway sends: the device's identity and key, with `force` (above). */
export function preauthorizeBody(request: Pick<AuthRequest, 'identity' | 'pubkeyPem'>): Buffer {
  return Buffer.from(JSON.stringify({ identity_data: request.identity, pubkey: request.pubkeyPem, force: true }));
}

export function createPreauthorizer(options: PreauthorizerOptions): Preauthorizer {
  const { upstream, session, cache, log } = options;
  // A device retrying while its first attempt is still upstream joins it.
  const inflight = new Map<string, Promise<void>>();

  async function call(request: AuthRequest, device: OnBehalfOf, token: string) {
    const body = preauthorizeBody(request);
    return managementCall(upstream, {
      method: 'POST',
      path: PREAUTHORIZE_PATH,
      headers: {
        Authorization: `Bearer ${token}`,
        'Content-Type': 'application/json',
        'X-Forwarded-For': device.clientAddress,
        'X-Forwarded-Proto': 'https',
        'X-MEN-RequestID': device.requestId,
      },
      body,
    });
  }

  async function preauthorize(key: string, request: AuthRequest, device: OnBehalfOf): Promise<void> {
    let token = await session.token();
    let reply = await call(request, device, token);
    if (reply.status === 401) {
      // Expired or revoked between our clock and theirs: one fresh login, one retry.
      session.invalidate(token);
      token = await session.token();
      reply = await call(request, device, token);
    }
    if (reply.status === 201 || reply.status === 409) {
      log.debug('device preauthorized', { status: reply.status, client: device.clientAddress, request_id: device.requestId });
      cache?.add(key);
      return;
    }
    log.error('preauthorization refused by the Mender server', {
      status: reply.status,
      reason: errorText(reply),
      client: device.clientAddress,
      request_id: device.requestId,
    });
    throw new GatewayError('UPSTREAM_BAD_RESPONSE', `device preauthorization failed (Mender server answered ${reply.status})`);
  }

  return {
    ensure(request, device) {
      const key = preauthorizationKey(request);
      if (cache?.has(key)) return Promise.resolve();
      let running = inflight.get(key);
      if (!running) {
        running = preauthorize(key, request, device).finally(() => inflight.delete(key));
        inflight.set(key, running);
      }
      return running;
    },
    forget(request) {
      cache?.delete(preauthorizationKey(request));
    },
  };
}
