import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { createLinkSigner, type LinkSigner } from '../../lib/artifacts/signed-link';
import { startQuietGateway, type GatewayProcess } from '../../spec/support/gateway-process';

// The gateway as a user runs it (`node bin/gateway.js --config FILE`), configured for the same
// job as nginx: pass-through to the emulator, artifact proxy with the on-disk cache, HTTP and
// HTTPS; or, for the handshake case, HTTPS with Features.mTLS. Links are minted here with the
// gateway's own signer and secret: what deployments/next would hand a device.

export interface GatewaySetup {
  dir: string;
  /** UpstreamServer: the emulator (mTLS logs in there) or the lean deployments/next stub. */
  upstreamPort: number;
  cachePath: string;
  serverCert: string;
  serverKey: string;
  /** Features.mTLS: the CA file for device certificates. */
  mtlsCa?: string;
  /** NODE_OPTIONS for the gateway (default: BENCH_GATEWAY_NODE_OPTIONS), e.g. --inspect for a heap probe. */
  nodeOptions?: string;
  /** The `node` the gateway runs on (default: the shipped runtime, the one running the bench). */
  node?: string;
}

export interface GatewayUnderTest {
  proc: GatewayProcess;
  pid: number;
  /** Worker processes the gateway chose (its `worker processes` log line; 1 when it runs alone). */
  workers: number;
  /** The gateway's processes: the primary and any workers. */
  pids(): number[];
  url(listener: 'http' | 'https'): string;
  /** The gateway link for a presigned origin URL, on the given listener. */
  link(origin: string, listener: 'http' | 'https'): string;
  stop(): Promise<void>;
}

const SECRET = randomBytes(32);
const signer: LinkSigner = createLinkSigner({ secret: SECRET, gatewayUrl: 'http://gateway.invalid' });

/** `workers`: the `Workers` key; default BENCH_GATEWAY_WORKERS, else the gateway's own choice. */
export async function startGatewayUnderTest(s: GatewaySetup, name: string, workers?: number): Promise<GatewayUnderTest> {
  const workersKey = workers ?? (process.env.BENCH_GATEWAY_WORKERS ? Number(process.env.BENCH_GATEWAY_WORKERS) : undefined);
  const mtls = s.mtlsCa !== undefined;
  const config = {
    HTTP: { Enabled: !mtls, Listen: '127.0.0.1:0' },
    HTTPS: { Enabled: true, Listen: '127.0.0.1:0', ServerCertificate: s.serverCert, ServerKey: s.serverKey },
    UpstreamServer: { URL: `http://127.0.0.1:${s.upstreamPort}` },
    Features: {
      ArtifactsProxy: {
        Enabled: true,
        GatewayURL: 'http://gateway.invalid',
        DomainWhitelist: ['127.0.0.1'],
        ArtifactsCache: { Enabled: true, Path: s.cachePath, SignatureSecret: SECRET.toString('base64') },
      },
      ...(mtls
        ? { mTLS: { Enabled: true, CACertificate: s.mtlsCa, MenderUsername: 'admin@example.com', MenderPassword: 'correcthorse' } }
        : {}),
    },
    // One process: Metrics on, as the one-process idle target has it (docs/benchmarks.md). Not with workers:
    // there the auto rule would fall back to one process (metrics are per process).
    ...(workersKey === 1 ? { Metrics: { Enabled: true, Listen: '127.0.0.1:0' } } : {}),
    ...(workersKey !== undefined ? { Workers: workersKey } : {}),
  };
  const started = await startQuietGateway(s.dir, `gateway-${name}`, config, {
    waitFor: mtls ? ['https'] : ['http', 'https'],
    timeoutMs: 30_000,
    node: s.node,
    nodeOptions: s.nodeOptions ?? process.env.BENCH_GATEWAY_NODE_OPTIONS,
  });
  const proc = started.proc;
  return {
    proc,
    pid: proc.process.pid!,
    workers: started.workers,
    pids: started.pids,
    url: (listener) => proc.url(listener),
    link(origin, listener) {
      const minted = new URL(signer.mint(origin, new Date(Date.now() + 6 * 3600_000)));
      return `${proc.url(listener)}${minted.pathname}${minted.search}`;
    },
    async stop() {
      await proc.stop();
    },
  };
}

export const cacheDir = (dir: string) => path.join(dir, 'gateway-cache');
