import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMenderServer } from '../fixtures/mender-server';
import { startS3Store } from '../fixtures/s3-store';
import { makeDeviceCert } from '../spec/support/device-certs';
import { startGateway, writeGatewayConfig } from '../spec/support/gateway-process';
import { postAuth, signedAuthBody, tlsAgent } from '../spec/support/mtls-device';
import { makeTlsMaterial } from '../spec/support/tls-material';

// The admission latency the gateway adds for a device not yet preauthorized.
// Reference: the same auth request straight to the emulator with auto-accept (one TLS
// handshake, one request). Through the gateway (its own process, mTLS, emulator leaving
// devices pending): handshake with client certificate, signature check, preauthorize upstream
// (a new identity: no force), forward. Each sample is a new device identity on a new TLS connection, one at a
// time; medians and p90 in ms. `node dist/bench/mtls-admission-latency.js [samples]`.

const SAMPLES = Number(process.argv[2] ?? 200);

function stats(ms: number[]): { median: number; p90: number } {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { median: at(0.5), p90: at(0.9) };
}

async function timeAuths(
  url: string,
  agentFor: () => import('node:https').Agent,
  keyFile: string,
  macPrefix: string,
  repeatSameIdentity = false,
): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < SAMPLES + 10; i++) {
    const mac = `${macPrefix}:${((repeatSameIdentity ? 0 : i) >> 8).toString(16).padStart(2, '0')}:${(repeatSameIdentity ? 0 : i & 0xff).toString(16).padStart(2, '0')}`;
    const body = signedAuthBody({ mac }, keyFile);
    const agent = agentFor();
    const started = process.hrtime.bigint();
    const reply = await postAuth(url, agent, body);
    const elapsed = Number(process.hrtime.bigint() - started) / 1e6;
    agent.destroy();
    if (reply.status !== 200) throw new Error(`auth ${mac} answered ${reply.status}: ${reply.body}`);
    if (i >= 10) out.push(elapsed); // the first ten warm up JIT, agents and the management login
  }
  return out;
}

export async function benchMtlsAdmissionLatency(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-mtls-'));
  const tls = makeTlsMaterial(dir);
  const device = makeDeviceCert(dir, 'bench-device', tls.ca, { keyType: 'ec' });
  const store = await startS3Store();
  const direct = await startMenderServer({ store, tls: tls.server, autoAccept: true });
  const upstream = await startMenderServer({
    store,
    tls: tls.server,
    autoAccept: false,
    users: [{ email: 'gw@example.com', password: 'pw' }],
  });
  const configFile = writeGatewayConfig(dir, {
    HTTPS: { Enabled: true, Listen: '127.0.0.1:0', ServerCertificate: tls.server.cert, ServerKey: tls.server.key },
    HTTP: { Enabled: false },
    UpstreamServer: { URL: upstream.url, CACertificate: tls.ca.cert },
    Features: { mTLS: { Enabled: true, CACertificate: tls.ca.cert, MenderUsername: 'gw@example.com', MenderPassword: 'pw' } },
  });
  const gateway = await startGateway({ configFile, logLevel: 'info' });
  try {
    const plain = () => tlsAgent({ ca: tls.ca.cert });
    const mutual = () => tlsAgent({ ca: tls.ca.cert, cert: device.cert, key: device.key });
    const reference = stats(await timeAuths(direct.url, plain, device.key, '02:00:00:b0'));
    const admitted = stats(await timeAuths(gateway.url('https'), mutual, device.key, '02:00:00:b1'));
    const cached = stats(await timeAuths(gateway.url('https'), mutual, device.key, '02:00:00:b2', true));
    const preauths = upstream.preauthorizations.length;
    const line = (name: string, s: { median: number; p90: number }) =>
      `${name.padEnd(46)} median ${s.median.toFixed(2)} ms  p90 ${s.p90.toFixed(2)} ms`;
    process.stdout.write(
      [
        `mTLS admission latency, ${SAMPLES} auth requests each, one at a time, new TLS connection each (EC P-256 device key)`,
        line('direct to the emulator (auto-accept)', reference),
        line('through the gateway, not yet preauthorized', admitted),
        line('through the gateway, preauthorization cached', cached),
        `added by the gateway for a new device: median ${(admitted.median - reference.median).toFixed(2)} ms, p90 ${(admitted.p90 - reference.p90).toFixed(2)} ms`,
        `upstream saw ${upstream.logins.length} management login(s) and ${preauths} preauthorizations`,
        '',
      ].join('\n'),
    );
  } finally {
    await gateway.stop();
    await direct.close();
    await upstream.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  benchMtlsAdmissionLatency().catch((err) => {
    process.stderr.write(`bench failed: ${(err as Error).stack}\n`);
    process.exit(1);
  });
}
