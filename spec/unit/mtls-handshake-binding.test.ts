import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { certificateOf, parseCertificates, verifyClient, type ClientIdentityPolicy } from '../../lib/mtls/client-identity';
import { makeDeviceCert, makeSelfSignedDevice } from '../support/device-certs';
import { makeTlsMaterial, type TlsMaterial } from '../support/tls-material';

// A connection is bound to the certificate verified at its handshake. The listeners refuse TLS
// renegotiation; should the peer's certificate change anyway (Node's client cannot present
// another one on renegotiation, so a socket double plays it), admission never reads the new
// certificate, and from then on every request on the connection is refused.

let dir: string;
let material: TlsMaterial;
let certified: X509Certificate;
let forged: X509Certificate;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'handshake-binding-'));
  material = makeTlsMaterial(dir);
  certified = new X509Certificate(readFileSync(makeDeviceCert(dir, 'device', material.ca, { subject: '/CN=02:00:00:0e:00:aa' }).cert));
  forged = new X509Certificate(readFileSync(makeSelfSignedDevice(dir, '02:00:00:0e:00:01').cert));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** A server-side TLS socket whose peer certificate OpenSSL verified at the handshake; `present` changes it. */
function socketDouble(cert: X509Certificate) {
  let peer = cert;
  const socket = {
    authorized: true,
    authorizationError: null,
    getPeerCertificate: () => ({ raw: peer.raw, fingerprint256: peer.fingerprint256 }),
  };
  return { socket: socket as unknown as TLSSocket, present: (next: X509Certificate) => (peer = next) };
}

const policyOf = (): ClientIdentityPolicy => ({
  trusted: parseCertificates(readFileSync(material.ca.cert, 'utf8')),
  allowExpired: false,
  verifyByHandUntil: 0,
});

test("a connection whose peer certificate changes after the handshake is refused, and admission keeps the handshake's", () => {
  const policy = policyOf();
  const { socket, present } = socketDouble(certified);
  assert.deepEqual(verifyClient(socket, policy), { ok: true });
  assert.equal(certificateOf(socket, policy)?.fingerprint256, certified.fingerprint256);

  present(forged);
  assert.equal(certificateOf(socket, policy), undefined, 'the forged certificate is never handed to admission');
  assert.deepEqual(verifyClient(socket, policy), { ok: false, status: 401, reason: 'client certificate changed after the handshake' });

  // For good: presenting the first one again, or a CA reload, does not admit it again.
  present(certified);
  assert.equal(verifyClient(socket, policy).ok, false);
  policy.trusted = parseCertificates(readFileSync(material.ca.cert, 'utf8'));
  assert.equal(verifyClient(socket, policy).ok, false);
});

test('a CA reload verifies the chain again, of the certificate of the handshake only', () => {
  const policy = policyOf();
  const { socket, present } = socketDouble(certified);
  assert.equal(verifyClient(socket, policy).ok, true);
  present(forged);
  policy.trusted = [...parseCertificates(readFileSync(material.ca.cert, 'utf8')), forged];
  assert.deepEqual(verifyClient(socket, policy), { ok: false, status: 401, reason: 'client certificate changed after the handshake' });
});

test('the same certificate on every request keeps the connection admitted', () => {
  const policy = policyOf();
  const { socket } = socketDouble(certified);
  for (let i = 0; i < 3; i++) assert.equal(certificateOf(socket, policy)?.serialNumber, certified.serialNumber);
});
