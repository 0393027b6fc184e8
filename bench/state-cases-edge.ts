import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import { CacheIndex } from '../lib/cache/store/cache-index';
import { cacheLayout } from '../lib/cache/store/cache-layout';
import { intermediatesHeld, verifyPeerChain } from '../lib/mtls/client-identity';
import { PreauthorizationCache } from '../lib/mtls/preauthorization-cache';
import { StatusBoard } from '../lib/observe/status-page/status-board';
import { createUpstream } from '../lib/proxy/upstream';
import { BoundedMap } from '../lib/state/bounded-map';
import { testConfig } from '../spec/support/gateway-config';
import { makeCa, makeKey } from '../spec/support/tls-material';
import type { StateCase } from './state-case';

// The bounded maps outside the journal, as cases of bench/state-sizes.ts (`make state-sizes`):
// the status board, the mTLS preauthorization cache and intermediates, the artifact origins'
// agents, the cache's touch marks and too-big sizes.

/** A string as parsed from a request (flat; a template literal is a tree of pieces). */
const flat = (s: string): string => Buffer.from(s).toString('latin1');
const hex64 = (): string => randomBytes(32).toString('hex');

/** Intermediates of one CA (one `openssl ca` run), as DER, and a leaf under them. */
function intermediatesOf(n: number): { root: Buffer; leaf: Buffer; intermediates: Buffer[] } {
  const dir = mkdtempSync(join(tmpdir(), 'state-sizes-ca-'));
  const openssl = (args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  try {
    const root = makeCa(dir, 'root', '/CN=Root');
    const intKey = makeKey(dir, 'int');
    openssl(['req', '-new', '-key', intKey, '-subj', '/CN=Intermediate', '-out', 'int.csr']);
    openssl(['req', '-new', '-key', makeKey(dir, 'leaf'), '-subj', '/CN=device', '-out', 'leaf.csr']);
    mkdirSync(join(dir, 'issued'));
    writeFileSync(join(dir, 'index.txt'), '');
    writeFileSync(join(dir, 'serial'), '1000\n');
    const cnf =
      '[ca]\ndefault_ca=l\n[l]\ndatabase=index.txt\nserial=serial\nnew_certs_dir=issued\ndefault_md=sha256\ndefault_days=30\npolicy=p\nunique_subject=no\nx509_extensions=x\n[p]\ncommonName=supplied\n[x]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n';
    writeFileSync(join(dir, 'ca.cnf'), cnf);
    const csrs = Array.from({ length: n }, () => 'int.csr');
    openssl([
      'ca',
      '-batch',
      '-notext',
      '-config',
      'ca.cnf',
      '-cert',
      root.cert,
      '-keyfile',
      root.key,
      '-outdir',
      'issued',
      '-infiles',
      ...csrs,
    ]);
    const der = (file: string) => new X509Certificate(readFileSync(file)).raw;
    openssl([
      'x509',
      '-req',
      '-in',
      'leaf.csr',
      '-CA',
      join('issued', '1000.pem'),
      '-CAkey',
      intKey,
      '-set_serial',
      '7',
      '-days',
      '30',
      '-out',
      'leaf.crt',
    ]);
    return {
      root: der(root.cert),
      leaf: der(join(dir, 'leaf.crt')),
      intermediates: readdirSync(join(dir, 'issued')).map((f) => der(join(dir, 'issued', f))),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const EDGE_CASES: StateCase[] = [
  {
    name: 'status board devices',
    cap: 1000,
    age: '24h since last request',
    fill(n) {
      const board = new StatusBoard();
      for (let i = 0; i < n; i++) {
        const device = flat(randomUUID());
        const deployment = flat(randomUUID());
        // The longest request line the board keeps, built as observe-request.ts builds it.
        board.deviceSeen(
          device,
          flat(`10.${i >> 8}.${i & 255}.7`),
          `PUT ${flat(`/api/devices/v1/deployments/device/deployments/${deployment}/status`)}`,
        );
        board.deploymentStatus(device, deployment, flat('downloading'));
      }
      return board;
    },
  },
  {
    name: 'status board cache hits',
    cap: 10_000,
    age: '7d since last hit',
    fill(n) {
      const board = new StatusBoard();
      for (let i = 0; i < n; i++) board.cacheHit(hex64());
      return board;
    },
  },
  {
    name: 'mTLS preauthorization cache',
    cap: 20_000,
    age: 'CacheLifetime since added (1h)',
    fill(n) {
      const cache = new PreauthorizationCache(3600_000);
      for (let i = 0; i < n; i++) cache.add(hex64());
      return cache;
    },
  },
  {
    // The certificates' DER is made beforehand; each is parsed as a handshake would parse it.
    // The heap holds only its wrapper: OpenSSL's parse is ~6 KB more each outside it (RSS of
    // 10,000 parsed P-256 intermediates), ~1.5 MB at the cap.
    name: 'mTLS intermediates seen',
    cap: 256,
    age: '24h since last presented',
    prepare: (n) => intermediatesOf(n),
    fill(n, prepared) {
      const { root, leaf, intermediates } = prepared as ReturnType<typeof intermediatesOf>;
      const policy = { trusted: [new X509Certificate(root)], allowExpired: false, verifyByHandUntil: 0 };
      const leafCert = new X509Certificate(leaf);
      for (const raw of intermediates) {
        const issuer = { raw, fingerprint256: new X509Certificate(raw).fingerprint256 } as DetailedPeerCertificate;
        const detail = { raw: leaf, fingerprint256: leafCert.fingerprint256, issuerCertificate: issuer } as DetailedPeerCertificate;
        const verdict = verifyPeerChain({ authorized: true, getPeerCertificate: () => detail } as unknown as TLSSocket, policy);
        if (!verdict.ok) throw new Error(`intermediate refused: ${verdict.reason}`);
      }
      if (intermediatesHeld() !== n) throw new Error(`intermediates held: ${intermediatesHeld()}, not ${n}`);
      return policy;
    },
  },
  {
    name: 'artifact origins (agent per origin)',
    cap: 1024,
    age: '1h since last fetch',
    fill(n) {
      const upstream = createUpstream(testConfig({ UpstreamServer: { URL: 'https://127.0.0.1:1' } }).UpstreamServer, {});
      for (let i = 0; i < n; i++)
        upstream.originAgent(new URL(flat(`https://bucket-${hex64().slice(0, 20)}.s3.eu-west-1.amazonaws.com/a`)));
      if (upstream.originsKnown !== n) throw new Error(`origins known: ${upstream.originsKnown}, not ${n}`);
      return upstream;
    },
  },
  {
    name: 'cache index touch marks',
    cap: 10_000,
    age: '60s since set',
    async fill(n) {
      const index = new CacheIndex(cacheLayout(join(tmpdir(), `state-sizes-absent-${process.pid}`)));
      for (let i = 0; i < n; i++) index.touch({ id: hex64(), key: '', size: 1, etag: null, lastServed: 0, readers: 0 });
      // The mtime updates (failing: no files) settle before the measure.
      await new Promise((r) => setTimeout(r, 500));
      return index;
    },
  },
  {
    // ArtifactCache's own map (an entry needs a fill that met ENOSPC): the same map, filled here.
    name: 'artifact cache too-big sizes',
    cap: 1000,
    age: '24h since last checked',
    fill(n) {
      const map = new BoundedMap<string, number>({ maxEntries: n, maxAgeMs: 24 * 3600_000 });
      for (let i = 0; i < n; i++) map.set(hex64(), 2 ** 31 + i);
      return map;
    },
  },
];
