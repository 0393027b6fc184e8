import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { startCapturingRelay, headerOf, type CapturingRelay } from '../support/capturing-relay';
import { CLIENT5_STATUSES, client5Unavailable } from '../support/client5-fleet';
import { deployToFleet } from '../support/fleet-deployment';
import { assertFleetCompleted, cacheGatewayConfig, e2eScenario } from '../support/e2e-scenario';
import { closeServer, listenOnFreePort } from '../support/listen';

// Resume: a client 5.1 download cut in the middle resumes through the gateway.
// Devices reach the API on the HTTPS listener; GatewayURL (the artifact links) points at a
// relay in front of the gateway's plain-HTTP listener, so the test reads the Range the client
// sends and the Content-Range the gateway answers, and cuts the first download. The cache is
// on: the store sends the artifact once, cut or not. Client 5 waits 60 s before it resumes
// (its back-off starts at one minute and cannot be configured), so this file takes ~70 s.

const unavailable = client5Unavailable();
let relay: CapturingRelay | undefined;

const scenario = e2eScenario({
  dirPrefix: 'e2e-c5-resume-',
  tls: 'split',
  server: { autoAccept: true },
  artifact: { name: 'e2e-c5-resume-1', payloadBytes: 1024 * 1024, seed: 'c5-resume' },
  gatewayConfig: async (s) => {
    const config = await cacheGatewayConfig(s);
    const probe = net.createServer();
    const httpPort = await listenOnFreePort(probe);
    await closeServer(probe);
    relay = await startCapturingRelay(() => httpPort);
    const proxy = config.Features.ArtifactsProxy as Record<string, unknown>;
    return {
      ...config,
      HTTP: { Enabled: true, Listen: `127.0.0.1:${httpPort}` },
      Features: { ...config.Features, ArtifactsProxy: { ...proxy, GatewayURL: `http://127.0.0.1:${relay.port}` } },
    };
  },
  afterGatewayStop: () => relay?.close(),
});

before(() => (unavailable ? undefined : scenario.start()));
after(() => scenario.stop());

test('a client 5.1 download cut at 400 KB resumes through the gateway (Range, exact Content-Range); the store sends the artifact once', {
  timeout: 150_000,
  skip: unavailable ?? false,
}, async (t) => {
  const { server, store, artifact, gateway } = scenario;
  const r = relay!;
  const bytesBefore = store.totalBytesServed();
  const getsBefore = store.requestLog.length;
  r.cutNextAfter(400_000);
  const fleet = await scenario.startClient5Fleet({ count: 1, macPrefix: '02:00:00:58' });
  const run = await deployToFleet(fleet, server, artifact.name, 120_000);
  t.diagnostic(`cut to success: ${run.elapsedMs} ms after the deployment was created`);
  assert.equal(r.armed(), false, 'the relay never cut the download');
  assertFleetCompleted(scenario, fleet, run, { statuses: CLIENT5_STATUSES });

  const downloads = r.exchanges.filter((e) => /^GET /.test(e.request));
  assert.equal(downloads.length, 2, `downloads seen by the relay:\n${downloads.map((d) => d.request).join('\n--\n')}`);
  const [first, resumed] = downloads as [(typeof downloads)[0], (typeof downloads)[0]];
  assert.equal(first.cut, true);
  assert.equal(headerOf(first.request, 'Range'), undefined, 'the first download asked for a range');
  assert.match(first.response, /^HTTP\/1\.1 200 /);
  assert.equal(headerOf(first.response, 'Content-Length'), String(artifact.size));
  // Client 5 asks for a closed range up to the last byte and checks every field of the answer.
  const range = /^bytes=(\d+)-(\d+)$/.exec(headerOf(resumed.request, 'Range') ?? '');
  assert.ok(range, `resume request:\n${resumed.request}`);
  const start = Number(range[1]);
  assert.ok(start > 0 && start <= 400_000 + 65_536, `resumed from ${start}`);
  assert.equal(Number(range[2]), artifact.size - 1);
  assert.match(resumed.response, /^HTTP\/1\.1 206 /);
  assert.equal(headerOf(resumed.response, 'Content-Range'), `bytes ${start}-${artifact.size - 1}/${artifact.size}`);
  assert.equal(headerOf(resumed.response, 'Content-Length'), String(artifact.size - start));
  assert.equal(headerOf(resumed.request, 'User-Agent'), 'Mender/5.1.0');
  t.diagnostic(
    `client 5.1 resume: "Range: ${headerOf(resumed.request, 'Range')}" answered "${resumed.response.split('\r\n')[0]}", "Content-Range: ${headerOf(resumed.response, 'Content-Range')}"`,
  );
  assert.equal(fleet.logsMatching(/Resuming download/).length, 1, fleet.logTails(40));
  const resumeLine = /msg="[^"]*Resuming download[^"]*"/.exec(readFileSync(fleet.clients[0]!.logFile, 'utf8'));
  t.diagnostic(`client 5.1 log: ${resumeLine?.[0]}`);

  const storeGets = store.requestLog.slice(getsBefore).filter((e) => e.method === 'GET' && e.status < 300);
  assert.equal(storeGets.length, 1, `store requests: ${JSON.stringify(storeGets)}`);
  assert.ok(store.totalBytesServed() - bytesBefore <= 1.1 * artifact.size);
  assert.doesNotMatch(gateway.output(), /x-men-signature=[\w-]{10}/i, 'a gateway link signature appears in the gateway log');
});
