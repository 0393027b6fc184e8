// checkConfigFiles: the certificate and key files of enabled features, one line per problem.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkConfigFiles } from '../../lib/config/check-files';
import { loadConfig } from '../../lib/config/load-config';
import { makeLeaf, makeTlsMaterial } from '../support/tls-material';

const tls = makeTlsMaterial();
after(() => rmSync(tls.dir, { recursive: true, force: true }));
const other = makeLeaf(tls.dir, 'other', tls.ca, { subject: '/CN=other' });
const file = (name: string, text: string) => {
  const path = join(tls.dir, name);
  writeFileSync(path, text);
  return path;
};
const bundle = file('bundle.pem', readFileSync(tls.ca.cert, 'utf8') + readFileSync(other.cert, 'utf8'));
const garbled = file('garbled.pem', '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n');
const encryptedKey = join(tls.dir, 'encrypted.key');
execFileSync('openssl', ['pkcs8', '-topk8', '-in', tls.server.key, '-out', encryptedKey, '-passout', 'pass:secret'], { stdio: 'ignore' });
const der = join(tls.dir, 'server.der');
execFileSync('openssl', ['x509', '-in', tls.server.cert, '-outform', 'DER', '-out', der], { stdio: 'ignore' });

function configWith(env: NodeJS.ProcessEnv) {
  return loadConfig({
    file: join(tls.dir, 'none.conf'),
    explicit: false,
    env: { UPSTREAM_SERVER_URL: 'https://x.example', HTTP_ENABLED: 'true', ...env },
  }).config;
}
const https = (cert: string, key: string) => ({ HTTPS_ENABLED: 'true', HTTPS_SERVER_CERTIFICATE: cert, HTTPS_SERVER_KEY: key });

const cases: [string, NodeJS.ProcessEnv, string[]][] = [
  ['a matching pair', https(tls.server.cert, tls.server.key), []],
  ['HTTPS off: files not read', { HTTPS_SERVER_CERTIFICATE: '/nonexistent.pem' }, []],
  [
    'key of another certificate',
    https(tls.server.cert, other.key),
    [`HTTPS.ServerKey: ${other.key} does not match the certificate in HTTPS.ServerCertificate ${tls.server.cert}`],
  ],
  [
    'missing certificate',
    https('/nonexistent/cert.pem', tls.server.key),
    ['HTTPS.ServerCertificate: cannot read /nonexistent/cert.pem: no such file'],
  ],
  ['missing key', https(tls.server.cert, '/nonexistent/key.pem'), ['HTTPS.ServerKey: cannot read /nonexistent/key.pem: no such file']],
  [
    'certificate is a directory',
    https(tls.dir, tls.server.key),
    [`HTTPS.ServerCertificate: cannot read ${tls.dir}: is a directory, not a file`],
  ],
  [
    'key given as certificate',
    https(tls.server.key, tls.server.key),
    [`HTTPS.ServerCertificate: ${tls.server.key} is not a PEM certificate (no "BEGIN CERTIFICATE" block)`],
  ],
  [
    'DER certificate',
    https(der, tls.server.key),
    [`HTTPS.ServerCertificate: ${der} is not a PEM certificate (no "BEGIN CERTIFICATE" block)`],
  ],
  ['certificate given as key', https(tls.server.cert, tls.server.cert), [`HTTPS.ServerKey: ${tls.server.cert} is not a PEM private key`]],
  [
    'encrypted key',
    https(tls.server.cert, encryptedKey),
    [`HTTPS.ServerKey: ${encryptedKey} is an encrypted private key; the gateway needs it unencrypted`],
  ],
  ['upstream CA bundle', { UPSTREAM_SERVER_CA_CERTIFICATE: bundle }, []],
  [
    'upstream CA missing',
    { UPSTREAM_SERVER_CA_CERTIFICATE: '/nonexistent/ca.pem' },
    ['UpstreamServer.CACertificate: cannot read /nonexistent/ca.pem: no such file'],
  ],
  [
    'mTLS CA missing, HTTPS pair fine',
    {
      ...https(tls.server.cert, tls.server.key),
      MTLS_ENABLED: 'true',
      MTLS_CA_CERTIFICATE: '/nonexistent/tenant.pem',
      MTLS_MENDER_USERNAME: 'u@x',
      MTLS_MENDER_PASSWORD: 'p',
    },
    ['Features.mTLS.CACertificate: cannot read /nonexistent/tenant.pem: no such file'],
  ],
  [
    'mTLS CA fine',
    {
      ...https(tls.server.cert, tls.server.key),
      MTLS_ENABLED: 'true',
      MTLS_CA_CERTIFICATE: tls.ca.cert,
      MTLS_MENDER_USERNAME: 'u@x',
      MTLS_MENDER_PASSWORD: 'p',
    },
    [],
  ],
  [
    'every problem at once',
    { ...https('/nonexistent/c.pem', '/nonexistent/k.pem'), UPSTREAM_SERVER_CA_CERTIFICATE: tls.server.key },
    [
      'HTTPS.ServerCertificate: cannot read /nonexistent/c.pem: no such file',
      'HTTPS.ServerKey: cannot read /nonexistent/k.pem: no such file',
      `UpstreamServer.CACertificate: ${tls.server.key} is not a PEM certificate (no "BEGIN CERTIFICATE" block)`,
    ],
  ],
];

for (const [name, env, expected] of cases) {
  test(`checkConfigFiles: ${name}`, () => assert.deepEqual(checkConfigFiles(configWith(env)), expected));
}

test('checkConfigFiles: a broken PEM block is named with its index', () => {
  const lines = checkConfigFiles(configWith({ UPSTREAM_SERVER_CA_CERTIFICATE: garbled }));
  assert.equal(lines.length, 1);
  assert.match(lines[0], new RegExp(`^UpstreamServer\\.CACertificate: ${garbled}: certificate 1 cannot be parsed: `));
});
