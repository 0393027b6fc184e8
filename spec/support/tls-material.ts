import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Certificates are made at test time with openssl (fixtures are recipes, not committed blobs).

export type KeyType = 'rsa' | 'ec' | 'ed25519';

export interface CertPair {
  cert: string; // path to PEM certificate
  key: string; // path to PEM private key
}

export interface TlsMaterial {
  dir: string;
  ca: CertPair;
  /** Server certificate for 127.0.0.1, ::1 and localhost, signed by `ca`. */
  server: CertPair;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

export function makeKey(dir: string, name: string, type: KeyType = 'ec'): string {
  const path = join(dir, `${name}.key`);
  const algo =
    type === 'rsa'
      ? ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:3072']
      : type === 'ec'
        ? ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']
        : ['-algorithm', 'ED25519'];
  openssl(['genpkey', ...algo, '-out', path], dir);
  return path;
}

export function makeCa(dir: string, name = 'ca', subject = '/CN=Test CA'): CertPair {
  const key = makeKey(dir, name, 'ec');
  const cert = join(dir, `${name}.crt`);
  openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      key,
      '-subj',
      subject,
      '-days',
      '3650',
      '-out',
      cert,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  return { cert, key };
}

export interface LeafOptions {
  subject?: string;
  keyType?: KeyType;
  san?: string; // e.g. 'IP:127.0.0.1,DNS:localhost'
  extendedKeyUsage?: string; // 'serverAuth' | 'clientAuth'
  days?: number;
  serial?: string; // hex, e.g. '0x1a2b'
  crlUri?: string; // a CRL distribution point, as a real deployment's server certificate carries
}

/** A leaf certificate signed by `ca`. */
export function makeLeaf(dir: string, name: string, ca: CertPair, opts: LeafOptions = {}): CertPair {
  const key = makeKey(dir, name, opts.keyType ?? 'ec');
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.crt`);
  const ext = join(dir, `${name}.ext`);
  const lines = ['basicConstraints=CA:FALSE', `extendedKeyUsage=${opts.extendedKeyUsage ?? 'serverAuth'}`];
  if (opts.san) lines.push(`subjectAltName=${opts.san}`);
  if (opts.crlUri) lines.push(`crlDistributionPoints=URI:${opts.crlUri}`);
  writeFileSync(ext, lines.join('\n') + '\n');
  openssl(['req', '-new', '-key', key, '-subj', opts.subject ?? `/CN=${name}`, '-out', csr], dir);
  const serial = opts.serial ? ['-set_serial', opts.serial] : [];
  openssl(
    [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      ca.cert,
      '-CAkey',
      ca.key,
      ...serial,
      ...(serial.length ? [] : ['-CAcreateserial']),
      '-days',
      String(opts.days ?? 825),
      '-extfile',
      ext,
      '-out',
      cert,
    ],
    dir,
  );
  return { cert, key };
}

/** A CA and a server certificate valid for 127.0.0.1, ::1 and localhost, in a fresh temp dir. */
export function makeTlsMaterial(dir = mkdtempSync(join(tmpdir(), 'gw-tls-'))): TlsMaterial {
  const ca = makeCa(dir);
  const server = makeLeaf(dir, 'server', ca, {
    subject: '/CN=localhost',
    san: 'IP:127.0.0.1,IP:::1,DNS:localhost',
    extendedKeyUsage: 'serverAuth',
  });
  return { dir, ca, server };
}
