import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeCa, makeKey, type CertPair, type KeyType } from './tls-material';

// Device (client) certificates for mTLS tests, made with openssl at test time: RSA 3072,
// P-256 and Ed25519 keys, chosen serials, any validity window (expired, not yet valid) and
// intermediate CAs. `openssl ca` is used because OpenSSL 3.0's `x509 -req` cannot set dates.

export interface DeviceCert extends CertPair {
  /** Leaf followed by the intermediates, for the client to present. */
  chain: string;
  serial: string;
}

export interface DeviceCertOptions {
  keyType?: KeyType;
  /** Hex serial, e.g. '1A2B'; default: a fresh one per signing CA. */
  serial?: string;
  /** Validity window relative to now, in days (negative = past). Default -1 .. 365. */
  fromDays?: number;
  toDays?: number;
  subject?: string;
  /** subjectAltNames as TYPE:value, e.g. 'DNS:02:00:00:00:00:01' or 'email:a@example.com'; a value may hold commas. */
  subjectAltNames?: string[];
}

function openssl(args: string[], cwd: string): string {
  return execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
}

/** YYYYMMDDHHMMSSZ, the form `openssl ca -startdate/-enddate` takes for any year. */
function asn1Time(daysFromNow: number): string {
  return new Date(Date.now() + daysFromNow * 86_400_000).toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
}

let serialCounter = 0x1000;

/** Sign a CSR with `ca`, with the given extensions and dates, through a throwaway `openssl ca` database. */
function sign(
  dir: string,
  name: string,
  ca: CertPair,
  csr: string,
  extensions: string[],
  opts: DeviceCertOptions,
): { cert: string; serial: string } {
  const db = join(dir, `${name}.ca-db`);
  mkdirSync(db, { recursive: true });
  writeFileSync(join(db, 'index.txt'), '');
  const serial = (opts.serial ?? (serialCounter++).toString(16)).toUpperCase();
  writeFileSync(join(db, 'serial'), (serial.length % 2 ? '0' : '') + serial + '\n');
  const config = join(db, 'ca.cnf');
  writeFileSync(
    config,
    [
      '[ca]',
      'default_ca = local',
      '[local]',
      `database = ${join(db, 'index.txt')}`,
      `serial = ${join(db, 'serial')}`,
      `new_certs_dir = ${db}`,
      'default_md = sha256',
      'policy = any',
      'unique_subject = no',
      'copy_extensions = none',
      '[any]',
      'commonName = supplied',
      '[ext]',
      ...extensions,
      '',
    ].join('\n'),
  );
  const cert = join(dir, `${name}.crt`);
  openssl(
    [
      'ca',
      '-batch',
      '-notext',
      '-config',
      config,
      '-cert',
      ca.cert,
      '-keyfile',
      ca.key,
      '-in',
      csr,
      '-out',
      cert,
      '-extensions',
      'ext',
      '-startdate',
      asn1Time(opts.fromDays ?? -1),
      '-enddate',
      asn1Time(opts.toDays ?? 365),
    ],
    dir,
  );
  return { cert, serial };
}

/** A client certificate for a device, signed by `ca` (a root or an intermediate from makeIntermediate). */
export function makeDeviceCert(dir: string, name: string, ca: CertPair & { chain?: string }, opts: DeviceCertOptions = {}): DeviceCert {
  const key = makeKey(dir, name, opts.keyType ?? 'ec');
  const csr = join(dir, `${name}.csr`);
  openssl(['req', '-new', '-key', key, '-subj', opts.subject ?? `/CN=${name}`, '-out', csr], dir);
  const { cert, serial } = sign(
    dir,
    name,
    ca,
    csr,
    [
      'basicConstraints = CA:FALSE',
      'keyUsage = critical, digitalSignature',
      'extendedKeyUsage = clientAuth',
      ...altNameSection(opts.subjectAltNames ?? []),
    ],
    opts,
  );
  const chain = join(dir, `${name}.chain.crt`);
  writeFileSync(chain, readFileSync(cert, 'utf8') + (ca.chain ? readFileSync(ca.chain, 'utf8') : ''));
  return { cert, key, chain, serial };
}

/** openssl config lines for subjectAltNames: a section of numbered entries, where a value may hold a comma. */
function altNameSection(names: string[]): string[] {
  if (names.length === 0) return [];
  const lines = names.map((name, i) => {
    const colon = name.indexOf(':');
    return `${name.slice(0, colon)}.${i + 1} = ${name.slice(colon + 1)}`;
  });
  return ['subjectAltName = @alt', '[alt]', ...lines];
}

/**
 * An intermediate CA under `root`; its `chain` file is the intermediate itself (devices send it).
 * Valid -1 .. 3650 days unless `validity` says otherwise (an expired CA left in a bundle).
 */
export function makeIntermediate(
  dir: string,
  name: string,
  root: CertPair,
  validity: Pick<DeviceCertOptions, 'fromDays' | 'toDays'> = {},
): CertPair & { chain: string } {
  const key = makeKey(dir, name, 'ec');
  const csr = join(dir, `${name}.csr`);
  openssl(['req', '-new', '-key', key, '-subj', `/CN=${name}`, '-out', csr], dir);
  const { cert } = sign(dir, name, root, csr, ['basicConstraints = critical, CA:TRUE', 'keyUsage = critical, keyCertSign, cRLSign'], {
    toDays: 3650,
    ...validity,
  });
  return { cert, key, chain: cert };
}

/** A self-signed CA nobody trusts. */
export function makeRogueCa(dir: string, name = 'rogue-ca'): CertPair {
  return makeCa(dir, name, '/CN=Rogue CA');
}

/** A self-signed device certificate (not a CA): what a device makes for itself. */
export function makeSelfSignedDevice(dir: string, name: string): DeviceCert {
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
      `/CN=${name}`,
      '-days',
      '365',
      '-out',
      cert,
      '-addext',
      'basicConstraints=CA:FALSE',
      '-addext',
      'extendedKeyUsage=clientAuth',
    ],
    dir,
  );
  return { cert, key, chain: cert, serial: '' };
}

export interface CrlOptions {
  /** Revoked serial numbers in hex. */
  revoked: string[];
  /** lastUpdate and nextUpdate relative to now, in days. Default -1/24 .. 7. */
  lastUpdateDays?: number;
  nextUpdateDays?: number;
  der?: boolean;
}

/** `ca`'s certificate revocation list (PEM, or DER), made by `openssl ca -gencrl`; returns its path. */
export function makeCrl(dir: string, name: string, ca: CertPair, opts: CrlOptions): string {
  const db = join(dir, `${name}.crl-db`);
  mkdirSync(db, { recursive: true });
  // One index line per revoked certificate: status, expiry, revocation time, serial, file, subject.
  const revokedAt = asn1Time(-1 / 24).slice(2);
  const line = (serial: string) =>
    `R\t351231000000Z\t${revokedAt}\t${(serial.length % 2 ? '0' : '') + serial.toUpperCase()}\tunknown\t/CN=revoked\n`;
  writeFileSync(join(db, 'index.txt'), opts.revoked.map(line).join(''));
  writeFileSync(join(db, 'crlnumber'), '01\n');
  const config = join(db, 'ca.cnf');
  writeFileSync(
    config,
    [
      '[ca]',
      'default_ca = local',
      '[local]',
      `database = ${join(db, 'index.txt')}`,
      `crlnumber = ${join(db, 'crlnumber')}`,
      'default_md = sha256',
      'unique_subject = no',
      '',
    ].join('\n'),
  );
  const pem = join(db, 'crl.pem');
  openssl(
    [
      'ca',
      '-gencrl',
      '-config',
      config,
      '-cert',
      ca.cert,
      '-keyfile',
      ca.key,
      '-out',
      pem,
      '-crl_lastupdate',
      asn1Time(opts.lastUpdateDays ?? -1 / 24),
      '-crl_nextupdate',
      asn1Time(opts.nextUpdateDays ?? 7),
    ],
    dir,
  );
  const out = join(dir, `${name}.crl`);
  openssl(['crl', '-in', pem, '-outform', opts.der ? 'DER' : 'PEM', '-out', out], dir);
  return out;
}
