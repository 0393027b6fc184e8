import { GatewayError } from '../http/gateway-error';
import type { Logger } from '../observe/log';
import type { Upstream } from '../proxy/upstream';
import { errorText, managementCall } from './management-call';

// The gateway user's management token (Features.mTLS.MenderUsername/MenderPassword):
// logged in on first use, kept, renewed shortly before its `exp` and after a 401, with at
// most one login in flight however many devices ask at once (gateway 2.1.0 MEN-9043 fixed
// exactly this burst). A failed login fails the devices waiting on it; the next device
// asking starts a new one.

export const LOGIN_PATH = '/api/management/v1/useradm/auth/login';

export interface ManagementSession {
  /** A token believed valid now (logs in when there is none). */
  token(): Promise<string>;
  /** The server refused `token` (401): the next token() logs in again, unless someone already did. */
  invalidate(token: string): void;
  readonly logins: number;
}

export interface SessionOptions {
  upstream: Upstream;
  username: string;
  password: string;
  log: Logger;
  now?: () => number;
}

export function createManagementSession(options: SessionOptions): ManagementSession {
  const { upstream, username, password, log } = options;
  const now = options.now ?? Date.now;
  let current: { token: string; renewAt: number } | undefined;
  let inflight: Promise<string> | undefined;
  let logins = 0;

  async function login(): Promise<string> {
    logins++;
    const basic = Buffer.from(`${username}:${password}`).toString('base64');
    const reply = await managementCall(upstream, {
      method: 'POST',
      path: LOGIN_PATH,
      headers: { Authorization: `Basic ${basic}`, Accept: 'application/jwt' },
    });
    if (reply.status !== 200) {
      const hint = reply.status === 401 ? ': check Features.mTLS.MenderUsername and MenderPassword' : '';
      log.error('management login failed', { user: username, status: reply.status, reason: errorText(reply) + hint });
      throw new GatewayError('UPSTREAM_BAD_RESPONSE', `gateway cannot log in to the Mender server (status ${reply.status})`);
    }
    const token = reply.body.toString('utf8').trim();
    if (!/^[\w-]+\.[\w-]+\.[\w-]*$/.test(token)) {
      log.error('management login answered something that is not a JWT', { user: username, bytes: reply.body.length });
      throw new GatewayError('UPSTREAM_BAD_RESPONSE', 'gateway cannot log in to the Mender server (no token)');
    }
    current = { token, renewAt: renewTime(token, now()) };
    log.info('management login succeeded', { user: username, renew_in_s: Math.round((current.renewAt - now()) / 1000) });
    return token;
  }

  return {
    token() {
      if (current && now() < current.renewAt) return Promise.resolve(current.token);
      inflight ??= login().finally(() => {
        inflight = undefined;
      });
      return inflight;
    },
    invalidate(token) {
      if (current?.token === token) current = undefined;
    },
    get logins() {
      return logins;
    },
  };
}

/**
 * When to log in again: a tenth of the token's lifetime (at most a minute) before `exp`, so
 * no device call goes out with a token about to expire. No readable `exp`: keep it until a 401.
 */
export function renewTime(token: string, at: number): number {
  try {
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as { exp?: unknown; iat?: unknown };
    if (typeof claims.exp !== 'number') return Number.POSITIVE_INFINITY;
    const exp = claims.exp * 1000;
    const iat = typeof claims.iat === 'number' ? claims.iat * 1000 : at;
    const margin = Math.min(60_000, Math.max(0, (exp - iat) / 10));
    return exp - margin;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}
