// A gateway started with a server certificate ending in 10 days, an mTLS CA file that still
// holds an expired CA, and a CRL past its nextUpdate: the dates are gauges on /metrics, each is
// warned about in the log at start and once more on SIGHUP, and a reload that swaps the server
// certificate moves its gauge (and what the listener serves) to the new one.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import type { GatewayConfig } from '../../lib/config/types';
import { startGateway, type RunningGateway } from '../../lib/gateway';
import { captureLog } from '../support/capture-log';
import { makeCrl, makeIntermediate } from '../support/device-certs';
import { testConfig } from '../support/gateway-config';
import { closeServer, listenOnFreePort } from '../support/listen';
import { makeLeaf, makeTlsMaterial } from '../support/tls-material';

const dir = mkdtempSync(join(tmpdir(), 'gw-expiry-'));
const material = makeTlsMaterial(dir);
const soon = makeLeaf(dir, 'server-soon', material.ca, {
  subject: '/CN=localhost',
  san: 'IP:127.0.0.1,IP:::1,DNS:localhost',
  days: 10,
});
const expiredCa = makeIntermediate(dir, 'retired-ca', material.ca, { fromDays: -400, toDays: -2 });
const bundle = join(dir, 'client-ca-bundle.crt');
writeFileSync(bundle, readFileSync(material.ca.cert, 'utf8') + readFileSync(expiredCa.cert, 'utf8'));
const staleCrl = makeCrl(dir, 'stale', material.ca, { revoked: ['0A1B'], lastUpdateDays: -10, nextUpdateDays: -3 });

const seconds = (path: string) => new X509Certificate(readFileSync(path)).validToDate.getTime() / 1000;
// openssl's own reading of the CRL, not the gateway's parser: "nextUpdate=Dec  4 17:00:00 2026 GMT".
const crlNextUpdate =
  Date.parse(execFileSync('openssl', ['crl', '-in', staleCrl, '-noout', '-nextupdate'], { encoding: 'utf8' }).replace(/^nextUpdate=/, '')) /
  1000;

const upstream = http.createServer((req, res) => {
  req.resume();
  res.writeHead(204).end();
});
const captured = captureLog('info');
let gateway: RunningGateway;
let config: GatewayConfig;

before(async () => {
  const port = await listenOnFreePort(upstream);
  config = testConfig({
    HTTP: { Enabled: false },
    HTTPS: { Enabled: true, Listen: '127.0.0.1:0', ServerCertificate: soon.cert, ServerKey: soon.key },
    UpstreamServer: { URL: `http://127.0.0.1:${port}`, CACertificate: material.ca.cert },
    Metrics: { Enabled: true, Listen: '127.0.0.1:0' },
    Features: {
      mTLS: {
        Enabled: true,
        CACertificate: bundle,
        CRLPath: staleCrl,
        MenderUsername: 'gateway@example.com',
        MenderPassword: 'S3cret-Horse-Battery-9',
      },
    },
  });
  gateway = await startGateway(config, captured.log);
  await gateway.admin!.ready;
});
after(async () => {
  await gateway?.close(0);
  await closeServer(upstream);
  rmSync(dir, { recursive: true, force: true });
});

async function dates(): Promise<Map<string, number>> {
  const text = await new Promise<string>((resolve, reject) => {
    http
      .get(`http://127.0.0.1:${gateway.admin!.address()!.port}/metrics`, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(mender_gateway_(?:certificate_expiry|crl_next_update)_timestamp_seconds(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}

/** The notAfter of the certificate the HTTPS listener serves now. */
function served(): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: gateway.addresses.https!.port, rejectUnauthorized: false }, () => {
      resolve(new Date(socket.getPeerCertificate().valid_to).getTime() / 1000);
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

const count = (re: RegExp) => captured.lines.filter((l) => re.test(l)).length;
const SOON = /level=warning msg="certificate expires soon" certificate=server path=\S+server-soon\.crt not_after=\S+ days_left=9\n$/;
const EXPIRED = /level=error msg="certificate expired" certificate=client_ca path=\S+client-ca-bundle\.crt not_after=\S+ days_ago=2\n$/;
const STALE = /level=warning msg="CRL is past its nextUpdate: still enforced" path=\S+stale\.crl next_update=(\S+) /;

test('the dates in use are gauges, each warning is in the log; a reload says them once more and moves the server gauge', async () => {
  assert.deepEqual(
    await dates(),
    new Map([
      ['mender_gateway_certificate_expiry_timestamp_seconds{certificate="client_ca"}', seconds(expiredCa.cert)],
      ['mender_gateway_crl_next_update_timestamp_seconds', crlNextUpdate],
      ['mender_gateway_certificate_expiry_timestamp_seconds{certificate="server"}', seconds(soon.cert)],
      ['mender_gateway_certificate_expiry_timestamp_seconds{certificate="upstream_ca"}', seconds(material.ca.cert)],
    ]),
  );
  assert.equal(await served(), seconds(soon.cert));
  assert.equal(count(SOON), 1, captured.text());
  assert.equal(count(EXPIRED), 1, captured.text());
  assert.equal(count(STALE), 1, captured.text());
  const staleLine = captured.lines.find((l) => STALE.test(l)) ?? '';
  assert.equal(Date.parse(STALE.exec(staleLine)?.[1] ?? '') / 1000, crlNextUpdate);
  assert.equal(count(/msg="certificate /), 2, 'the upstream CA, ten years ahead, is not warned about');

  // SIGHUP with a renewed server certificate: the gauge follows; what still holds is said once more.
  gateway.reload({ ...config, HTTPS: { ...config.HTTPS, ServerCertificate: material.server.cert, ServerKey: material.server.key } });
  const now = await dates();
  assert.equal(now.get('mender_gateway_certificate_expiry_timestamp_seconds{certificate="server"}'), seconds(material.server.cert));
  assert.equal(await served(), seconds(material.server.cert));
  assert.equal(count(SOON), 1, 'the renewed certificate is not warned about');
  assert.equal(count(EXPIRED), 2, captured.text());
  assert.equal(count(STALE), 2, captured.text());

  // A reload back to the old certificate warns about it again, once.
  gateway.reload(config);
  assert.equal((await dates()).get('mender_gateway_certificate_expiry_timestamp_seconds{certificate="server"}'), seconds(soon.cert));
  assert.equal(count(SOON), 2, captured.text());
  assert.equal(count(EXPIRED), 3, captured.text());
});
