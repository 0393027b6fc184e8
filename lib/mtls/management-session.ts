import { GatewayError } from '../http/gateway-error';
import type { Logger } from '../observe/log';
import type { Upstream } from '../proxy/upstream';
import { errorText, managementCall } from './management-call';

// The gateway user's management token (Features.mTLS.MenderUsername/MenderPassword):
// logged in on first use, kept, renewed shortly before it expires and after a 401, with at
// most one login in flight however many devices ask at once (gateway 2.1.0 MEN-9043 fixed
// exactly this burst). A failed login fails the devices waiting on it; the next device
// asking starts a new one.
// When to renew is counted on the monotonic clock from the login, for the token's lifetime
// (`exp - iat`, both the server's): a wall clock stepped by NTP (a box without a real-time
// clock boots in the past) neither makes a fresh token look expired, which would log in again
// at every device, nor makes an old one look valid.

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
  /** Monotonic milliseconds (tests pass their own). */
  clock?: () => number;
  /** Wall-clock milliseconds, only for a token without `iat` (tests pass their own). */
  wallClock?: () => number;
}

export function createManagementSession(options: SessionOptions): ManagementSession {
  const { upstream, username, password, log } = options;
  const clock = options.clock ?? (() => performance.now());
  const wallClock = options.wallClock ?? Date.now;
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
    const renewIn = renewAfter(token, wallClock());
    current = { token, renewAt: clock() + renewIn };
    log.info('management login succeeded', { user: username, renew_in_s: Math.round(renewIn / 1000) });
    return token;
  }

  return {
    token() {
      if (current && clock() < current.renewAt) return Promise.resolve(current.token);
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
 * How long after the login to log in again (ms): a tenth of the token's lifetime (at most a
 * minute) before it ends, and a second more because `iat` and `exp` are whole seconds (a token
 * issued at 10.9 s with `iat` 10 and `exp` 13 lives 2.1 s, not 3), but never before half its
 * lifetime. The lifetime is `exp - iat`; without `iat`, `exp` less our wall clock, and when that
 * is not positive (our clock is wrong, not the token) or there is no `exp`: kept until a 401.
 */
export function renewAfter(token: string, wallNow: number): number {
  try {
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as { exp?: unknown; iat?: unknown };
    if (typeof claims.exp !== 'number') return Number.POSITIVE_INFINITY;
    const lifetime = typeof claims.iat === 'number' ? (claims.exp - claims.iat) * 1000 : claims.exp * 1000 - wallNow;
    if (!(lifetime > 0)) return Number.POSITIVE_INFINITY;
    const margin = Math.min(60_000, lifetime / 10) + 1000;
    return Math.max(lifetime / 2, lifetime - margin);
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}
