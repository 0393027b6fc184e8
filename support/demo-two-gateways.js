#!/usr/bin/env node
'use strict';
// Two gateways sharing one S3 bucket as their second-level cache, all on loopback,
// no Docker: the S3 store as artifact origin, a second S3 store as the shared bucket, the
// Mender server emulator, two gateways (`node bin/gateway.js`, each its own cache directory,
// one SignatureSecret), a round-robin TCP balancer in front of them, scripted devices behind it,
// one deployment. It prints the bytes the origin and the bucket served until every device is
// updated. Run from the repository root after `npx tsc -p .`:
//
//   node support/demo-two-gateways.js            # Ctrl-C to stop
//   DEMO_DEVICES=10 DEMO_EXIT_AFTER_SECONDS=2 node support/demo-two-gateways.js
//
// Knobs: DEMO_DEVICES (6), DEMO_ARTIFACT_MIB (4), DEMO_THROTTLE_KIB_PER_SECOND (2048),
// DEMO_EXIT_AFTER_SECONDS (stop once all are updated), DEMO_TIMEOUT_SECONDS (120).

const { mkdtempSync, mkdirSync, rmSync } = require('node:fs');
const { randomBytes } = require('node:crypto');
const net = require('node:net');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const dist = join(__dirname, '..', 'dist');
const { startS3Store } = require(join(dist, 'fixtures/s3-store'));
const { startMenderServer } = require(join(dist, 'fixtures/mender-server'));
const { startGateway, writeGatewayConfig } = require(join(dist, 'spec/support/gateway-process'));
const { makeTlsMaterial } = require(join(dist, 'spec/support/tls-material'));
const { writeSeededBytes } = require(join(dist, 'spec/support/make-artifact'));
const { startDemoFleet, waitOnline } = require(join(dist, 'fixtures/demo/demo-fleet'));

const env = process.env;
const DEVICES = Number(env.DEMO_DEVICES || 6);
const MIB = Number(env.DEMO_ARTIFACT_MIB || 4);
const THROTTLE = Number(env.DEMO_THROTTLE_KIB_PER_SECOND || 2048) * 1024;
const EXIT_AFTER = env.DEMO_EXIT_AFTER_SECONDS === undefined ? undefined : Number(env.DEMO_EXIT_AFTER_SECONDS);
const TIMEOUT = Number(env.DEMO_TIMEOUT_SECONDS || 120);
const say = (line) => process.stdout.write(`${line}\n`);
const mib = (n) => `${(n / 1048576).toFixed(1)} MiB`;
const cleanups = [];
let stopping;

function stopAll(code, why) {
  if (stopping) return stopping;
  say(`\n${why}: stopping everything...`);
  stopping = (async () => {
    while (cleanups.length)
      await Promise.resolve()
        .then(cleanups.pop())
        .catch((err) => say(`  cleanup step failed: ${err.message}`));
    process.exit(code);
  })();
  return stopping;
}

/** A TCP balancer: each new connection goes to the next gateway (what a Service or LB does). */
async function startBalancer(targets) {
  let next = 0;
  const sockets = new Set();
  const server = net.createServer((client) => {
    const { host, port } = targets[next++ % targets.length];
    const up = net.connect(port, host);
    for (const s of [client, up]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s)).on('error', () => undefined);
    }
    client.pipe(up).pipe(client);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(r));
    },
  };
}

async function main() {
  process.on('SIGINT', () => void stopAll(0, 'Ctrl-C'));
  process.on('SIGTERM', () => void stopAll(0, 'SIGTERM'));
  const dir = mkdtempSync(join(tmpdir(), 'mender-gateway-two-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const upstreamTls = makeTlsMaterial(mkdtempSync(join(dir, 'upstream-tls-')));
  const gatewayTls = makeTlsMaterial(mkdtempSync(join(dir, 'gateway-tls-')));

  const origin = await startS3Store({ throttleBytesPerSecond: THROTTLE });
  cleanups.push(() => origin.close());
  const bucket = await startS3Store();
  cleanups.push(() => bucket.close());
  const server = await startMenderServer({ store: origin, tls: upstreamTls.server, autoAccept: true });
  cleanups.push(() => server.close());
  say(`origin S3 store  ${origin.endpoint} (${mib(THROTTLE)}/s per download)`);
  say(`shared bucket    ${bucket.endpoint}/${bucket.bucket}`);
  say(`Mender server    ${server.url} (emulator)`);

  const targets = [];
  const lb = await startBalancer(targets);
  cleanups.push(() => lb.close());
  const publicUrl = `https://127.0.0.1:${lb.port}`;
  const secret = randomBytes(32).toString('base64'); // every replica signs links alike
  for (const name of ['gw1', 'gw2']) {
    mkdirSync(join(dir, name));
    const configFile = writeGatewayConfig(join(dir, name), {
      Workers: 1,
      HTTPS: { Enabled: true, Listen: '127.0.0.1:0', ServerCertificate: gatewayTls.server.cert, ServerKey: gatewayTls.server.key },
      UpstreamServer: { URL: server.url, CACertificate: upstreamTls.ca.cert },
      Features: {
        ArtifactsProxy: {
          Enabled: true,
          GatewayURL: publicUrl,
          DomainWhitelist: ['127.0.0.1'],
          ArtifactsCache: {
            Enabled: true,
            Path: join(dir, name, 'cache'),
            SignatureSecret: secret,
            S3: { Enabled: true, Endpoint: bucket.endpoint, Bucket: bucket.bucket, Region: bucket.region, Prefix: 'gateway-cache/' },
          },
        },
      },
    });
    // Credentials from the environment, as a Kubernetes Secret would give them.
    const gwEnv = {
      ...env,
      WORKERS: '',
      ARTIFACTS_PROXY_CACHE_S3_ACCESS_KEY_ID: bucket.accessKey,
      ARTIFACTS_PROXY_CACHE_S3_SECRET_ACCESS_KEY: bucket.secretKey,
    };
    const gw = await startGateway({ configFile, env: gwEnv, detached: true, timeoutMs: 30_000 });
    cleanups.push(() => gw.stop());
    const [host, port] = gw.listeners.https.split(/:(?=\d+$)/);
    targets.push({ host, port: Number(port) });
    say(`gateway ${name}      https://${gw.listeners.https}, cache ${join(dir, name, 'cache')}`);
  }
  say(`devices use      ${publicUrl} (round-robin over both gateways)`);

  const artifact = join(dir, 'release-2.bin');
  await writeSeededBytes(artifact, Math.round(MIB * 1048576), 'two-gateways');
  await server.uploadArtifact(artifact, { name: 'release-2', deviceTypes: ['test-device'] });
  const fleet = await startDemoFleet('scripted', DEVICES, dir, publicUrl, gatewayTls.ca.cert);
  cleanups.push(() => fleet.stop());
  await waitOnline(server, fleet.devices, TIMEOUT);
  const ids = fleet.devices.map((d) => server.deviceByIdentity(d.identity).id);
  const deployment = server.createDeployment({ name: 'two-gateways', artifactName: 'release-2', devices: ids });
  say(`deployment       ${deployment.id} to ${ids.length} scripted devices\n`);

  const started = Date.now();
  let doneAt;
  const timer = setInterval(() => {
    const updated = ids.filter((id) => server.statuses(deployment.id, id).at(-1) === 'success').length;
    const secs = Math.round((Date.now() - started) / 1000);
    say(
      `[${String(secs).padStart(4)}s] updated ${updated}/${ids.length} | origin served ${mib(origin.totalBytesServed())} | bucket served ${mib(bucket.totalBytesServed())}`,
    );
    if (updated === ids.length && doneAt === undefined) {
      doneAt = Date.now();
      say(`all updated; the artifact crossed the uplink ${(origin.totalBytesServed() / (MIB * 1048576)).toFixed(2)} times`);
    }
    if (EXIT_AFTER !== undefined && doneAt !== undefined && Date.now() - doneAt >= EXIT_AFTER * 1000)
      void stopAll(0, 'DEMO_EXIT_AFTER_SECONDS reached');
    if (doneAt === undefined && secs >= TIMEOUT) {
      for (const d of fleet.devices.slice(0, 2)) say(`--- ${d.identity.mac}\n${d.tail()}`);
      void stopAll(1, `not every device updated within ${TIMEOUT} s`);
    }
  }, 1000);
  cleanups.push(() => clearInterval(timer));
}

main().catch((err) => {
  say(`demo failed: ${err.message}`);
  void stopAll(1, 'error');
});
