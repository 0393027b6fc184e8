import { randomUUID } from 'node:crypto';
import { GatewayError } from '../http/gateway-error';
import type { Logger } from '../observe/log';
import { mtlsMetrics } from '../observe/metrics';
import type { Upstream } from '../proxy/upstream';
import { canonicalIdentity, preauthorizationKey, type AuthRequest } from './auth-request';
import { authSetsOf, deviceIdOf, judgeHolding, type Holding } from './held-identity';
import { errorText, managementCall, type ManagementReply } from './management-call';
import type { ManagementSession } from './management-session';
import type { PreauthorizationCache } from './preauthorization-cache';

// Make sure deviceauth holds a preauthorized (or accepted) auth set for this identity and key,
// so the device's own auth request that follows is accepted (device-protocol.md §8, §11).
// A preauthorization without `force` creates a new identity (201) or names the device that
// holds it (409). Only then, and only when no other key holds that identity and the operator
// did not reject this key, is `force` sent: it turns this key's (pending or new) auth set
// into a preauthorized one. Forcing blindly, as the product does, lets any certificate holder
// replace another device's key and undo a rejection; AllowKeyReplacement brings that back.

export const PREAUTHORIZE_PATH = '/api/management/v2/devauth/devices';

/** Where the request came from, for the calls made on its behalf (gateway 2.1.0 MEN-9042). */
export interface OnBehalfOf {
  clientAddress: string;
  requestId: string;
}

/**
 * A preauthorization under way. Its management calls carry an X-MEN-RequestID the gateway
 * made, not the device's: a device must not choose what the server logs for calls made with
 * the operator's token. Every log line names both, so the device's request can be found.
 */
interface OnBehalf extends OnBehalfOf {
  managementRequestId: string;
}

export interface Preauthorizer {
  ensure(request: AuthRequest, device: OnBehalfOf): Promise<void>;
  /** The server refused the device after all: preauthorize again next time. */
  forget(request: AuthRequest): void;
  /** Preauthorizations under way and identities with a queue, for the tests that they empty. */
  readonly pending: { inflight: number; queues: number };
}

export interface PreauthorizerOptions {
  upstream: Upstream;
  session: ManagementSession;
  cache?: PreauthorizationCache;
  log: Logger;
  /** Features.mTLS.AllowKeyReplacement: force over whatever upstream holds (the product's behaviour). */
  allowKeyReplacement?: boolean;
}

/** The preauthorization the gateway sends: the device's identity and key, with `force` or without. */
export function preauthorizeBody(request: Pick<AuthRequest, 'identity' | 'pubkeyPem'>, force: boolean): Buffer {
  return Buffer.from(JSON.stringify({ identity_data: request.identity, pubkey: request.pubkeyPem, ...(force ? { force: true } : {}) }));
}

/** What the device is told when its identity is not given to its key; the log and metrics say the same. */
const REFUSALS: Record<'rejected' | 'held', string> = {
  rejected: 'device key rejected by the operator on the Mender server',
  held: 'device identity is held by another key on the Mender server: remove that key there first, or set Features.mTLS.AllowKeyReplacement',
};

const settled = (): void => undefined;

export function createPreauthorizer(options: PreauthorizerOptions): Preauthorizer {
  const { upstream, session, cache, log } = options;
  // Both maps hold only what is under way: an entry leaves when its attempt settles, whatever
  // the outcome (each attempt is bounded by UpstreamServer.Timeout per management call).
  // A device retrying while its first attempt is still upstream joins it.
  const inflight = new Map<string, Promise<void>>();
  // One preauthorization at a time per identity, whatever the key: the lookup and the forced
  // preauthorization that follows are two calls, and two keys judged between them would both
  // find the identity unclaimed and both be forced. The tail of each identity's queue; it never rejects.
  const queues = new Map<string, Promise<void>>();

  /** One management call with the gateway user's token: after a 401, one fresh login and one retry. */
  async function managed(method: 'GET' | 'POST', path: string, device: OnBehalf, body?: Buffer): Promise<ManagementReply> {
    const send = (token: string) =>
      managementCall(upstream, {
        method,
        path,
        headers: {
          Authorization: `Bearer ${token}`,
          ...(body ? { 'Content-Type': 'application/json' } : {}),
          'X-Forwarded-For': device.clientAddress,
          'X-Forwarded-Proto': 'https',
          'X-MEN-RequestID': device.managementRequestId,
        },
        body,
      });
    const token = await session.token();
    const reply = await send(token);
    if (reply.status !== 401) return reply;
    // Expired or revoked between our clock and theirs.
    session.invalidate(token);
    return send(await session.token());
  }

  function failed(what: string, reply: ManagementReply, device: OnBehalf): GatewayError {
    log.error(`${what} refused by the Mender server`, {
      status: reply.status,
      reason: errorText(reply),
      client: device.clientAddress,
      request_id: device.requestId,
      management_request_id: device.managementRequestId,
    });
    return new GatewayError('UPSTREAM_BAD_RESPONSE', `device ${what} failed (Mender server answered ${reply.status})`);
  }

  /** 201, or 409 with the holding device's record; anything else is an error. */
  async function submit(request: AuthRequest, device: OnBehalf, force: boolean): Promise<ManagementReply> {
    const reply = await managed('POST', PREAUTHORIZE_PATH, device, preauthorizeBody(request, force));
    if (reply.status === 201 || reply.status === 409) {
      log.debug('device preauthorization answered', {
        status: reply.status,
        force,
        client: device.clientAddress,
        request_id: device.requestId,
        management_request_id: device.managementRequestId,
      });
      return reply;
    }
    throw failed('preauthorization', reply, device);
  }

  /** The identity exists upstream (409): what its auth sets say about this key. */
  async function holding(conflict: ManagementReply, request: AuthRequest, device: OnBehalf): Promise<{ id: string; holding: Holding }> {
    const id = deviceIdOf(conflict.body);
    if (!id) throw failed('preauthorization (a 409 without a device id)', conflict, device);
    const record = await managed('GET', `${PREAUTHORIZE_PATH}/${encodeURIComponent(id)}`, device);
    const sets = record.status === 200 ? authSetsOf(record.body) : undefined;
    if (!sets) throw failed('lookup', record, device);
    return { id, holding: judgeHolding(request.key, sets) };
  }

  async function preauthorize(key: string, request: AuthRequest, device: OnBehalf): Promise<void> {
    // With AllowKeyReplacement, 409 only comes from a server without `force`: the set may already be accepted.
    const first = await submit(request, device, options.allowKeyReplacement === true);
    if (first.status === 409 && !options.allowKeyReplacement) {
      const found = await holding(first, request, device);
      if (found.holding === 'rejected' || found.holding === 'held') {
        const reason = REFUSALS[found.holding];
        mtlsMetrics.refused(reason);
        log.warn('auth request refused: identity not given to this key', {
          reason,
          device_id: found.id,
          client: device.clientAddress,
          request_id: device.requestId,
          management_request_id: device.managementRequestId,
        });
        throw new GatewayError('DEVICE_REFUSED', reason);
      }
      if (found.holding === 'unclaimed') await submit(request, device, true);
    }
    cache?.add(key);
  }

  return {
    ensure(request, device) {
      const key = preauthorizationKey(request);
      if (cache?.has(key)) return Promise.resolve();
      const joined = inflight.get(key);
      if (joined) return joined;
      const identity = canonicalIdentity(request.identity);
      const behind = queues.get(identity) ?? Promise.resolve();
      const onBehalf = { ...device, managementRequestId: randomUUID() };
      // Behind another key's turn: that one may have just given the identity away.
      const running = behind
        .then(() => (cache?.has(key) ? undefined : preauthorize(key, request, onBehalf)))
        .finally(() => inflight.delete(key));
      inflight.set(key, running);
      const tail = running.then(settled, settled);
      queues.set(identity, tail);
      void tail.then(() => {
        if (queues.get(identity) === tail) queues.delete(identity);
      });
      return running;
    },
    forget(request) {
      cache?.delete(preauthorizationKey(request));
    },
    get pending() {
      return { inflight: inflight.size, queues: queues.size };
    },
  };
}
