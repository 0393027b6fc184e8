import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { makeDeviceCert } from '../support/device-certs';
import { postAuth, signedAuthBody, tlsAgent } from '../support/mtls-device';
import { type MtlsBed, startMtlsBed } from '../support/mtls-bed';

// One auth route, one behaviour during an outage: a load balancer in front of the Mender server
// answering 502, 503 or 504 is an outage like a refused connection. With the report journal on,
// a device upstream admitted gets its kept token back, whether mTLS answers auth requests or the
// pass-through does; a device upstream never admitted gets the balancer's answer as it came (with
// mTLS: the gateway's 502, as its preauthorization met the balancer first).

const USER = { email: 'gateway@example.com', password: 'front-Pa55' };
let bed: MtlsBed;
let front: http.Server;
/** The balancer's answer to everything while set; else it forwards to the Mender server. */
let down: number | undefined;

before(async () => {
  bed = await startMtlsBed('auth-unreachable-', { users: [USER], autoAccept: true });
  const target = new URL(bed.server.url);
  front = http.createServer((req, res) => {
    if (down !== undefined) {
      req.resume();
      res.writeHead(down, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: `balancer says ${down}` }));
      return;
    }
    const out = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
});

after(async () => {
  await new Promise((resolve) => front.close(resolve));
  await bed.close();
});

async function gateway(mtls: boolean): Promise<string> {
  const upstreamUrl = `http://127.0.0.1:${(front.address() as AddressInfo).port}`;
  const features = { ReportJournal: { Enabled: true, Path: join(bed.dir, `journal-${mtls}`) }, mTLS: { Enabled: mtls, EnableCache: true } };
  return (await bed.startGateway({ UpstreamServer: { URL: upstreamUrl }, Features: features })).https;
}

for (const mtls of [false, true]) {
  test(`${mtls ? 'mTLS' : 'no mTLS'}: 502, 503 and 504 from a balancer give an admitted device its kept token; others get the balancer's answer`, async () => {
    const url = await gateway(mtls);
    const device = (name: string) => {
      const cert = makeDeviceCert(bed.dir, `${name}-${mtls}`, bed.tls.ca, { keyType: 'ec' });
      return {
        agent: tlsAgent({ ca: bed.tls.ca.cert, cert: cert.cert, key: cert.key }),
        body: signedAuthBody({ mac: `02:00:00:ee:0${Number(mtls)}:${name}` }, cert.key),
      };
    };
    const known = device('01');
    const stranger = device('02');
    const issued = await postAuth(url, known.agent, known.body);
    assert.equal(issued.status, 200, issued.body);
    for (const status of [502, 503, 504]) {
      down = status;
      try {
        const again = await postAuth(url, known.agent, known.body);
        assert.deepEqual([again.status, again.body], [200, issued.body], `${status}: the kept token`);
        const refused = await postAuth(url, stranger.agent, stranger.body);
        // With mTLS a stranger is preauthorized first, and the management call meets the balancer.
        if (mtls)
          assert.deepEqual(
            [refused.status, JSON.parse(refused.body).error],
            [502, `device preauthorization failed (Mender server answered ${status})`],
          );
        else assert.deepEqual([refused.status, JSON.parse(refused.body).error], [status, `balancer says ${status}`]);
      } finally {
        down = undefined;
      }
    }
  });
}
