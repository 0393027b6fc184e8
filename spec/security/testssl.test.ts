import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startMenderServer, type MenderServer } from '../../fixtures/mender-server';
import { startS3Store, type S3Store } from '../../fixtures/s3-store';
import { startGateway, type RunningGateway } from '../../lib/gateway';
import { captureLog } from '../support/capture-log';
import { testConfig } from '../support/gateway-config';
import { makeCa, makeLeaf, type CertPair } from '../support/tls-material';

// testssl.sh (Debian's package; .ci/run installs it) against the HTTPS listener and against an
// mTLS listener, loopback only. The checks run are the TLS ones: protocols, cipher categories,
// forward secrecy, server defaults and preferences, vulnerabilities (-p -s -f -S -P -U). Left
// out: client simulation (-c, only INFO, and most of the time) and the HTTP header checks (-h:
// HSTS and browser security headers on `/`, whose answer is the Mender server's, not the
// listener's). The server certificate carries a CRL distribution point, as a deployment's
// certificate should (without one testssl rates the certificate HIGH). Nothing is fetched:
// no DNS, no CRL or OCSP download (no --phone-out).

const SCAN_LIMIT_MS = 240_000;
const ABOVE_LOW = new Set(['MEDIUM', 'HIGH', 'CRITICAL']);
const QUIET = new Set(['OK', 'INFO', 'DEBUG']);

interface Finding {
  id: string;
  severity: string;
  finding: string;
}

/** testssl's command: `testssl` in Debian's package, `testssl.sh` from its own tree. */
function testsslCommand(): string | undefined {
  for (const name of ['testssl', 'testssl.sh']) {
    try {
      execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
      return name;
    } catch {
      // not this one
    }
  }
  return undefined;
}

function scan(command: string, port: number, ca: string, jsonFile: string): Promise<Finding[]> {
  const args = [
    '--quiet',
    '--warnings',
    'off',
    '--color',
    '0',
    '--nodns',
    'none',
    '--connect-timeout',
    '5',
    '--openssl-timeout',
    '10',
    '--add-ca',
    ca,
    '-p',
    '-s',
    '-f',
    '-S',
    '-P',
    '-U',
    '--jsonfile',
    jsonFile,
    `127.0.0.1:${port}`,
  ];
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: SCAN_LIMIT_MS, maxBuffer: 16 * 1024 * 1024 }, (err, stdout) => {
      let findings: Finding[];
      try {
        findings = JSON.parse(readFileSync(jsonFile, 'utf8')) as Finding[];
      } catch {
        return reject(new Error(`testssl wrote no JSON (${err?.message ?? 'no error'}): ${stdout.slice(-2000)}`));
      }
      // testssl's exit status counts findings; a kill by the time limit is a failure.
      if (err && (err as { killed?: boolean }).killed) return reject(new Error(`testssl did not finish within ${SCAN_LIMIT_MS / 1000} s`));
      resolve(findings);
    });
  });
}

function judge(listener: string, findings: Finding[]): void {
  const shown = findings.filter((f) => !QUIET.has(f.severity));
  console.log(`testssl on the ${listener} listener: ${findings.length} findings, above INFO:`);
  for (const f of shown) console.log(`  ${f.severity} ${f.id}: ${f.finding}`);
  // The scan did reach TLS: a run that could not connect has findings too, all of them warnings.
  const tls12 = findings.find((f) => f.id === 'TLS1_2');
  assert.match(tls12?.finding ?? '', /^offered/, `no TLS 1.2 result: the scan did not run (${JSON.stringify(shown)})`);
  assert.match(findings.find((f) => f.id === 'cipherlist_STRONG')?.finding ?? '', /^offered/);
  assert.match(findings.find((f) => f.id === 'TLS1_3')?.finding ?? '', /^offered/, 'TLS 1.3 is gone');
  assert.deepEqual(
    findings.filter((f) => ABOVE_LOW.has(f.severity)).map((f) => `${f.severity} ${f.id}: ${f.finding}`),
    [],
    `testssl on the ${listener} listener: findings above LOW`,
  );
  // What testssl found on Node's default suites: CBC ("obsoleted", LUCKY13), rated LOW.
  assert.match(findings.find((f) => f.id === 'cipherlist_AVERAGE')?.finding ?? '', /^not offered/, 'CBC suites offered');
  assert.equal(findings.find((f) => f.id === 'LUCKY13')?.severity, 'OK', 'LUCKY13: CBC suites offered');
}

describe('testssl.sh against the device listeners', { timeout: 2 * SCAN_LIMIT_MS + 60_000 }, () => {
  const command = testsslCommand();
  let dir: string;
  let ca: CertPair;
  let server: CertPair;
  let store: S3Store;
  let upstream: MenderServer;
  const gateways: RunningGateway[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'attack-testssl-'));
    ca = makeCa(dir);
    server = makeLeaf(dir, 'server', ca, {
      subject: '/CN=localhost',
      san: 'IP:127.0.0.1,IP:::1,DNS:localhost',
      extendedKeyUsage: 'serverAuth',
      crlUri: 'http://127.0.0.1/gateway-ca.crl',
    });
    store = await startS3Store();
    upstream = await startMenderServer({ store });
  });
  after(async () => {
    await Promise.all(gateways.map((g) => g.close(0)));
    await upstream?.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const listener = async (mtls: boolean): Promise<number> => {
    const gateway = await startGateway(
      testConfig({
        HTTP: { Enabled: false },
        HTTPS: { Enabled: true, ServerCertificate: server.cert, ServerKey: server.key },
        UpstreamServer: { URL: upstream.url },
        ...(mtls
          ? { Features: { mTLS: { Enabled: true, CACertificate: ca.cert, MenderUsername: 'gw@example.com', MenderPassword: 'x' } } }
          : {}),
      }),
      captureLog('warn').log,
    );
    gateways.push(gateway);
    return gateway.addresses.https!.port;
  };

  it('attack: testssl.sh finds nothing above LOW and no CBC suite on the HTTPS listener', { timeout: SCAN_LIMIT_MS + 30_000 }, async () => {
    assert.ok(command, 'testssl.sh is not installed (Debian: apt-get install testssl.sh; .ci/run installs it)');
    judge('HTTPS', await scan(command, await listener(false), ca.cert, join(dir, 'https.json')));
  });

  // The listener asks for a client certificate and drops a connection without one once the
  // handshake is done: the scan goes on (testssl then skips its HTTP checks, which it says).
  it('attack: testssl.sh finds nothing above LOW and no CBC suite on an mTLS listener', { timeout: SCAN_LIMIT_MS + 30_000 }, async () => {
    assert.ok(command, 'testssl.sh is not installed (Debian: apt-get install testssl.sh; .ci/run installs it)');
    judge('mTLS', await scan(command, await listener(true), ca.cert, join(dir, 'mtls.json')));
  });
});
