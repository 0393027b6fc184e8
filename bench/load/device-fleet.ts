import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

// Small-box target 6 (docs/benchmarks.md): a fleet of devices, each with its own P-256 key and client certificate,
// all signed by one CA of their own. Made once with openssl (one `req -x509 -CA` per device,
// two at a time: ~25 ms each here) and kept under the temp dir, so a second bench run reuses
// them (a `complete` file marks a finished set; a half-made one is made again).

// openssl req: a new P-256 key and a certificate for it (self-signed, or signed with -CA).
const NEW_P256_CERT = ['req', '-x509', '-new', '-config', 'req.cnf', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export interface DeviceFleet {
  dir: string;
  ca: { cert: string; key: string };
  devices: { cert: string; key: string }[];
}

const fleetDir = (count: number) => path.join(tmpdir(), `mender-gw-bench-fleet-v1-${count}`);
const devicePaths = (dir: string, i: number) => ({ cert: path.join(dir, `device-${i}.crt`), key: path.join(dir, `device-${i}.key`) });

// `req -x509` applies no config extensions with this file: the leaf gets only what -addext says.
const REQ_CONFIG = '[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = unused\n';

function run(args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile('openssl', args, { cwd }, (err, _out, stderr) =>
      err ? reject(new Error(`openssl ${args[0]}: ${stderr || err.message}`)) : resolve(),
    ),
  );
}

export async function deviceFleet(count: number): Promise<DeviceFleet> {
  const dir = fleetDir(count);
  const ca = { cert: path.join(dir, 'ca.crt'), key: path.join(dir, 'ca.key') };
  const devices = Array.from({ length: count }, (_, i) => devicePaths(dir, i));
  if (existsSync(path.join(dir, 'complete'))) return { dir, ca, devices };
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(path.join(dir, 'req.cnf'), REQ_CONFIG);
  execFileSync(
    'openssl',
    [
      ...NEW_P256_CERT,
      '-keyout',
      ca.key,
      '-out',
      ca.cert,
      '-subj',
      '/CN=Bench Device CA',
      '-days',
      '3650',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    { cwd: dir, stdio: 'pipe' },
  );
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const d = devices[i];
      await run(
        [
          ...NEW_P256_CERT,
          '-keyout',
          d.key,
          '-out',
          d.cert,
          '-subj',
          `/CN=bench-device-${i}`,
          '-CA',
          ca.cert,
          '-CAkey',
          ca.key,
          '-set_serial',
          String(0x10000 + i),
          '-days',
          '3650',
          '-addext',
          'basicConstraints=critical,CA:FALSE',
          '-addext',
          'keyUsage=critical,digitalSignature',
          '-addext',
          'extendedKeyUsage=clientAuth',
        ],
        dir,
      );
    }
  };
  await Promise.all([worker(), worker()]);
  writeFileSync(path.join(dir, 'complete'), `${count}\n`);
  return { dir, ca, devices };
}
