import * as path from 'node:path';
import type { TlsMaterial } from '../../spec/support/tls-material';
import type { Origin as FileOrigin } from '../bench-origin';
import { freePort } from '../../spec/support/listen';
import { startNginx, type NginxProcess } from '../nginx/nginx-process';
import { startGatewayUnderTest, type GatewaySetup, type GatewayUnderTest } from './gateway-under-test';
import type { OriginHandle } from './origin';
import type { Runtime } from './runtimes';

// The two proxies of the comparison: the gateway under test (and, to compare worker counts, the same with
// the other worker count) and nginx with as many workers as the gateway chose. Each is put in
// `running` as soon as it is up, so the caller stops whatever started if a later one fails.

export interface Running {
  gateway?: GatewayUnderTest;
  other?: GatewayUnderTest;
  /** The main gateway's configuration on the previous runtime. */
  previous?: GatewayUnderTest;
  nginx?: NginxProcess;
}

export interface ProxyOptions {
  nginxBinary: string;
  setup: GatewaySetup;
  origin: OriginHandle;
  fileOrigin: FileOrigin;
  tls: TlsMaterial;
  /** The CA of the mTLS case's device fleet (default: tls.ca). */
  mtlsCa?: string;
  /** Start the gateway with the other worker count too (1 when the main one runs 2, else 2). */
  withWorkers: boolean;
  /** Also start the main gateway on this runtime (the previous one's column). */
  previous?: Runtime;
}

export interface Proxies {
  gateway: GatewayUnderTest;
  other?: GatewayUnderTest;
  previous?: GatewayUnderTest;
  nginx: NginxProcess;
  nginxWorkers: number;
  nginxPorts: { http: number; https: number; mtls: number; mtlsResume: number; pass: number };
}

export async function startProxies(running: Running, o: ProxyOptions): Promise<Proxies> {
  const gateway = await startGatewayUnderTest(o.setup, 'main');
  running.gateway = gateway;
  if (o.withWorkers) {
    const n = gateway.workers === 1 ? 2 : 1;
    running.other = await startGatewayUnderTest({ ...o.setup, cachePath: `${o.setup.cachePath}-${n}w` }, `workers-${n}`, n);
  }
  if (o.previous)
    running.previous = await startGatewayUnderTest(
      { ...o.setup, cachePath: `${o.setup.cachePath}-previous`, node: o.previous.node },
      'previous-runtime',
    );
  // Equal work: nginx gets as many worker processes as the gateway chose for itself.
  const nginxWorkers = process.env.BENCH_NGINX_WORKERS ? Number(process.env.BENCH_NGINX_WORKERS) : gateway.workers;
  const nginxPorts = {
    http: await freePort(),
    https: await freePort(),
    mtls: await freePort(),
    mtlsResume: await freePort(),
    pass: await freePort(),
  };
  running.nginx = await startNginx(o.nginxBinary, {
    prefix: path.join(o.setup.dir, 'nginx'),
    workers: nginxWorkers,
    emulatorPort: o.origin.emulatorPort,
    s3Port: o.origin.s3Port,
    staticPort: o.fileOrigin.port,
    bucket: 'mender-artifact-storage',
    httpPort: nginxPorts.http,
    httpsPort: nginxPorts.https,
    mtlsPort: nginxPorts.mtls,
    mtlsResumePort: nginxPorts.mtlsResume,
    passPort: nginxPorts.pass,
    stubPort: o.origin.stubPort,
    serverCert: o.tls.server.cert,
    serverKey: o.tls.server.key,
    clientCa: o.mtlsCa ?? o.tls.ca.cert,
  });
  return { gateway, other: running.other, previous: running.previous, nginx: running.nginx, nginxWorkers, nginxPorts };
}
