import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import { intermediatesHeld, verifyPeerChain, type ClientIdentityPolicy } from '../../lib/mtls/client-identity';
import { makeCa, makeKey } from '../support/tls-material';

// The intermediates of verified chains are kept for resumed sessions (which carry the leaf
// alone): at most 256, and none a day after a chain last presented it. 300 intermediates of one
// CA (one name and key, new serials) stand for a CA that keeps issuing them.

const COUNT = 300;

const openssl = (args: string[], cwd: string): void => void execFileSync('openssl', args, { cwd, stdio: 'ignore' });

/** A TLS socket after OpenSSL accepted its chain: what the handshake listener is given. */
function handshakeOf(leaf: X509Certificate, intermediate: X509Certificate): TLSSocket {
  const issuer = { raw: intermediate.raw, fingerprint256: intermediate.fingerprint256 } as DetailedPeerCertificate;
  const detail = { raw: leaf.raw, fingerprint256: leaf.fingerprint256, issuerCertificate: issuer } as DetailedPeerCertificate;
  return { authorized: true, getPeerCertificate: () => detail } as unknown as TLSSocket;
}

test('300 intermediates: at most 256 held, and one unseen for a day is gone', () => {
  const dir = mkdtempSync(join(tmpdir(), 'intermediates-'));
  const realNow = performance.now;
  try {
    const root = makeCa(dir, 'root', '/CN=Root');
    const intKey = makeKey(dir, 'int');
    const leafKey = makeKey(dir, 'leaf');
    openssl(['req', '-new', '-key', intKey, '-subj', '/CN=Intermediate', '-out', 'int.csr'], dir);
    openssl(['req', '-new', '-key', leafKey, '-subj', '/CN=device', '-out', 'leaf.csr'], dir);
    // One `openssl ca` signs them all (a process per certificate takes seconds).
    mkdirSync(join(dir, 'issued'));
    writeFileSync(join(dir, 'index.txt'), '');
    writeFileSync(join(dir, 'serial'), '1000\n');
    writeFileSync(
      join(dir, 'ca.cnf'),
      [
        '[ca]',
        'default_ca = local',
        '[local]',
        'database = index.txt',
        'serial = serial',
        'new_certs_dir = issued',
        'default_md = sha256',
        'default_days = 30',
        'policy = any',
        'unique_subject = no',
        'x509_extensions = intermediate',
        '[any]',
        'commonName = supplied',
        '[intermediate]',
        'basicConstraints = critical, CA:TRUE',
        'keyUsage = critical, keyCertSign, cRLSign',
        'subjectKeyIdentifier = hash',
        '',
      ].join('\n'),
    );
    const csrs = Array.from({ length: COUNT }, () => 'int.csr');
    openssl(
      ['ca', '-batch', '-notext', '-config', 'ca.cnf', '-cert', root.cert, '-keyfile', root.key, '-outdir', 'issued', '-infiles', ...csrs],
      dir,
    );
    const intermediates = readdirSync(join(dir, 'issued')).map((f) => new X509Certificate(readFileSync(join(dir, 'issued', f))));
    assert.equal(intermediates.length, COUNT);
    copyFileSync(join(dir, 'issued', '1000.pem'), join(dir, 'int-0.crt'));
    openssl(
      ['x509', '-req', '-in', 'leaf.csr', '-CA', 'int-0.crt', '-CAkey', intKey, '-set_serial', '7', '-days', '30', '-out', 'leaf.crt'],
      dir,
    );
    const leaf = new X509Certificate(readFileSync(join(dir, 'leaf.crt')));
    const policy: ClientIdentityPolicy = {
      trusted: [new X509Certificate(readFileSync(root.cert))],
      allowExpired: false,
      verifyByHandUntil: 0,
    };

    for (const intermediate of intermediates) assert.deepEqual(verifyPeerChain(handshakeOf(leaf, intermediate), policy), { ok: true });
    assert.equal(intermediatesHeld(), 256);

    const dayLater = realNow.call(performance) + 24 * 3600_000;
    performance.now = () => dayLater;
    assert.deepEqual(verifyPeerChain(handshakeOf(leaf, intermediates[COUNT - 1]!), policy), { ok: true });
    assert.equal(intermediatesHeld(), 1, 'the ones unseen for a day went at the next chain');
  } finally {
    performance.now = realNow;
    rmSync(dir, { recursive: true, force: true });
  }
});
