import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import { startMenderServer } from '../../fixtures/mender-server';
import { startS3Store } from '../../fixtures/s3-store';
import { authBodySignedBy, postAuth } from '../../spec/support/mtls-device';
import { runMain } from '../part-timer';

// The origin of the nginx comparison, in a process of its own (forked, IPC): the Mender server
// emulator and the loopback S3 store from fixtures/. Its own process so that its CPU is not the
// orchestrator's and the two proxies meet the same upstream. The emulator records every call;
// under 20k req/s that record would grow without bound, so it is emptied every second.

export type OriginRequest =
  | { id: number; cmd: 'put'; key: string; file: string }
  | { id: number; cmd: 'stats'; key: string }
  | { id: number; cmd: 'throttle'; bytesPerSecond: number };

export interface OriginReady {
  ready: true;
  emulatorPort: number;
  s3Port: number;
  /** A device JWT the emulator accepts (autoAccept), for deployments/next. */
  deviceToken: string;
  /** The lean deployments/next upstream of the pass-through case (see nextStub). */
  stubPort: number;
}

// The emulator verifies an RS256 JWT on every call and tops out near 4,400 req/s here, which
// would cap both proxies alike and hide what each costs. The pass-through case therefore talks
// to this stub: deployments/next → 204 (nothing due) for any bearer token, 401 without one.
function nextStub(): http.Server {
  return http.createServer((req, res) => {
    req.resume();
    const ok =
      req.url?.startsWith('/api/devices/v1/deployments/device/deployments/next') && req.headers.authorization?.startsWith('Bearer ');
    res.writeHead(ok ? 204 : 401).end();
  });
}

async function deviceToken(port: number): Promise<string> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const body = authBodySignedBy({ mac: 'be:nc:h0:00:00:01' }, privateKey);
  const agent = new http.Agent();
  // autoAccept accepts the auth set on the first request; the second one gets the token.
  for (let attempt = 0; attempt < 2; attempt++) {
    const { status, body: token } = await postAuth(`http://127.0.0.1:${port}`, agent, body);
    if (status === 200) return token.trim();
  }
  throw new Error('the emulator did not accept the bench device');
}

async function main(): Promise<void> {
  const store = await startS3Store();
  const server = await startMenderServer({ store, autoAccept: true, jwtLifetimeSeconds: 6 * 3600 });
  setInterval(() => {
    server.calls.length = 0;
    store.requestLog.length = 0;
  }, 1000).unref();
  const token = await deviceToken(server.port);
  const stub = nextStub();
  await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
  const send = (m: unknown) => process.send!(m);
  process.on('message', (m: OriginRequest) => {
    const reply = (result: unknown) => send({ id: m.id, result });
    const fail = (err: Error) => send({ id: m.id, error: err.message });
    if (m.cmd === 'put')
      store
        .putObject(m.key, m.file)
        .then(() => store.presignGet(m.key, 6 * 3600))
        .then(reply, fail);
    else if (m.cmd === 'stats') reply(store.stats(m.key));
    else if (m.cmd === 'throttle') reply(store.setThrottle(m.bytesPerSecond));
  });
  process.on(
    'disconnect',
    () => void Promise.all([server.close(), store.close(), new Promise((r) => stub.close(r))]).finally(() => process.exit(0)),
  );
  send({
    ready: true,
    emulatorPort: server.port,
    s3Port: store.port,
    deviceToken: token,
    stubPort: (stub.address() as { port: number }).port,
  } satisfies OriginReady);
}

runMain('bench origin', main);
