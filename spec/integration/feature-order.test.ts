import assert from 'node:assert/strict';
import https from 'node:https';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { FEATURES, type FeatureEntry } from '../../lib/gateway';
import { makeDeviceCert } from '../support/device-certs';
import { postAuth, signedAuthBody, tlsAgent } from '../support/mtls-device';
import { type MtlsBed, startMtlsBed } from '../support/mtls-bed';

// Route order no longer decides behaviour (lib/http/route-table.ts): the artifact proxy, mTLS,
// the report journal and DeviceSystem, all on, listed in different orders, give a device the
// same answers through a whole round: auth, inventory (extended by DeviceSystem), next, an
// outage (the status journaled, the kept token given back by the journal around mTLS's auth
// route, next held back), and upstream back.

const USER = { email: 'gateway@example.com', password: 'order-Pa55' };
const INVENTORY = '/api/devices/v1/inventory/device/attributes';
const NEXT = '/api/devices/v1/deployments/device/deployments/next?artifact_name=a&device_type=qemu';
const STATUS = '/api/devices/v1/deployments/device/deployments/dep-order/status';
let bed: MtlsBed;

before(async () => {
  bed = await startMtlsBed('feature-order-', { users: [USER] });
});

after(() => bed.close());

function call(url: string, agent: https.Agent, method: string, path: string, token: string, body?: string) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const headers: Record<string, string> = { Authorization: `Bearer ${token}` };
    if (body !== undefined)
      Object.assign(headers, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) });
    const req = https.request(`${url}${path}`, { method, agent, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function round(order: readonly FeatureEntry<unknown>[], name: string): Promise<unknown[]> {
  const { https: url } = await bed.startGateway(
    {
      Features: {
        ArtifactsProxy: {
          Enabled: true,
          GatewayURL: 'https://gateway.example.com',
          DomainWhitelist: ['127.0.0.1'],
          ArtifactsCache: { Path: join(bed.dir, `cache-${name}`) },
        },
        ReportJournal: { Enabled: true, Path: join(bed.dir, `journal-${name}`) },
        DeviceSystem: { Enabled: true, SystemID: 'line-7', DefaultInventory: [] },
        mTLS: { Enabled: true },
      },
    },
    undefined,
    { features: order },
  );
  const cert = makeDeviceCert(bed.dir, name, bed.tls.ca, { keyType: 'ec' });
  const agent = tlsAgent({ ca: bed.tls.ca.cert, cert: cert.cert, key: cert.key });
  const identity = { mac: `02:00:00:0d:00:${name}` };
  const auth = signedAuthBody(identity, cert.key);
  const answers: unknown[] = [];
  const issued = await postAuth(url, agent, auth);
  answers.push(['auth', issued.status]);
  const token = issued.body;
  answers.push(['inventory', (await call(url, agent, 'PUT', INVENTORY, token, JSON.stringify([{ name: 'site', value: 'A' }]))).status]);
  const device = bed.server.devices().find((d) => JSON.stringify(d.identity) === JSON.stringify(identity));
  answers.push(['system id upstream', device?.inventory.mender_gateway_system_id]);
  answers.push(['next', (await call(url, agent, 'GET', NEXT, token)).status]);

  await bed.server.stop();
  answers.push(['status during the outage', (await call(url, agent, 'PUT', STATUS, token, '{"status":"downloading"}')).status]);
  const again = await postAuth(url, agent, auth);
  answers.push(['auth during the outage', again.status, again.body === token ? 'the kept token' : again.body]);
  const moved = JSON.stringify([{ name: 'site', value: 'B' }]);
  answers.push(['inventory during the outage', (await call(url, agent, 'PUT', INVENTORY, token, moved)).status]);
  answers.push(['next during the outage', (await call(url, agent, 'GET', NEXT, token)).status]);
  await bed.server.start();
  // The device's next asks for its waiting status to be replayed first, then goes upstream.
  answers.push(['next once upstream is back', (await call(url, agent, 'GET', NEXT, token)).status]);
  // The journaled inventory went upstream as DeviceSystem extended it.
  const replayed = bed.server.devices().find((d) => JSON.stringify(d.identity) === JSON.stringify(identity))?.inventory;
  answers.push(['inventory replayed', replayed?.site, replayed?.mender_gateway_system_id]);
  return answers;
}

test('the same answers whatever order the features are listed in', async () => {
  const orders: [string, FeatureEntry<unknown>[]][] = [
    ['01', [...FEATURES]],
    ['02', [...FEATURES].reverse()],
    ['03', [FEATURES[2]!, FEATURES[0]!, FEATURES[3]!, FEATURES[1]!]],
  ];
  const results: unknown[][] = [];
  for (const [name, order] of orders) results.push(await round(order, name));
  assert.deepEqual(results[0], [
    ['auth', 200],
    ['inventory', 200],
    ['system id upstream', 'line-7'],
    ['next', 204],
    ['status during the outage', 204],
    ['auth during the outage', 200, 'the kept token'],
    ['inventory during the outage', 200],
    ['next during the outage', 502],
    ['next once upstream is back', 204],
    ['inventory replayed', 'B', 'line-7'],
  ]);
  for (const r of results.slice(1)) assert.deepEqual(r, results[0]);
});
