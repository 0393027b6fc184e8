import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { renewAfter } from '../../lib/mtls/management-session';
import { captureLog } from '../support/capture-log';
import { PREAUTH } from '../support/device-api-paths';
import { makeDeviceCert } from '../support/device-certs';
import { postAuth, signedAuthBody, tlsAgent } from '../support/mtls-device';
import { type MtlsBed, startMtlsBed } from '../support/mtls-bed';

// The gateway's management session across its token's expiry (docs/operations.md "Clock steps"
// and the session): a 3 s management token, devices admitted while it holds, after it expired,
// and fifty at once just past its renewal time. Every admission succeeds, the logins upstream
// are exactly those renewal before expiry predicts, and no management call reaches the server
// with an expired token (the emulator answers those 401, as useradm does).

const USER = { email: 'gateway@example.com', password: 'gw-renewal-Pa55' };
const LIFETIME_S = 3;
let bed: MtlsBed;
const log = captureLog('info');

before(async () => {
  bed = await startMtlsBed('mgmt-renewal-', { users: [USER], jwtLifetimeSeconds: LIFETIME_S });
});
after(() => bed.close());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const claims = (token: string) =>
  JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as { exp: number; iat: number };

test('the management token is renewed before it expires, once per renewal, however many devices ask', async () => {
  const { https: url } = await bed.startGateway({ Features: { mTLS: { Enabled: true, EnableCache: false } } }, log.log);
  const cert = makeDeviceCert(bed.dir, 'renewal-device', bed.tls.ca, { keyType: 'ec' });
  let next = 0;
  const admit = async (agent = tlsAgent({ ca: bed.tls.ca.cert, cert: cert.cert, key: cert.key })) => {
    const mac = `02:00:00:28:${(next >> 8).toString(16).padStart(2, '0')}:${(next++ & 0xff).toString(16).padStart(2, '0')}`;
    return postAuth(url, agent, signedAuthBody({ mac }, cert.key));
  };
  const expectAdmitted = (reply: { status: number; body: string }) => assert.equal(reply.status, 200, reply.body);
  // The renewal time, as the server's token gives it: 3 s tokens are renewed 1.7 s after the login.
  const renewMs = renewAfter(`x.${Buffer.from(JSON.stringify({ iat: 0, exp: LIFETIME_S })).toString('base64url')}.x`, 0);
  assert.equal(renewMs, 1700);

  // First device: the first login. A second one while the token holds: no login.
  expectAdmitted(await admit());
  const firstLoginBy = performance.now();
  assert.equal(bed.server.logins.length, 1);
  await sleep(300);
  expectAdmitted(await admit());
  assert.equal(bed.server.logins.length, 1, 'a token well within its lifetime is kept');

  // Past its exp: the gateway logs in before it calls, never sending the expired token.
  await sleep(Math.max(0, firstLoginBy + LIFETIME_S * 1000 + 200 - performance.now()));
  expectAdmitted(await admit());
  const secondLoginBy = performance.now();
  assert.equal(bed.server.logins.length, 2, 'one login after expiry');

  // Fifty devices at once just past the renewal time, the old token still valid upstream: one login.
  bed.server.setJwtLifetime(3600); // the third token outlasts the burst, however slow the machine
  await sleep(Math.max(0, secondLoginBy + renewMs + 50 - performance.now()));
  const agent = tlsAgent({ ca: bed.tls.ca.cert, cert: cert.cert, key: cert.key }, { keepAlive: true, maxSockets: 50 });
  const burst = await Promise.all(Array.from({ length: 50 }, () => admit(agent)));
  agent.destroy();
  for (const reply of burst) expectAdmitted(reply);
  assert.equal(bed.server.logins.length, 3, 'one login at renewal, however many devices asked');
  assert.ok(bed.server.logins.every((l) => l.ok));

  // What the server saw: 53 preauthorizations, none refused, each with a token unexpired on arrival.
  const preauths = bed.server.calls.filter((c) => c.path.split('?')[0] === PREAUTH);
  assert.equal(preauths.length, 53);
  assert.deepEqual(
    preauths.filter((c) => c.status !== 201),
    [],
    'no management call refused (an expired token is a 401)',
  );
  for (const call of preauths) {
    const token = String(call.headers.authorization).replace(/^Bearer /, '');
    assert.ok(claims(token).exp * 1000 > call.at, `token expired ${call.at - claims(token).exp * 1000} ms before the call`);
  }
  assert.equal((log.text().match(/msg="management login succeeded"/g) ?? []).length, 3);
});
