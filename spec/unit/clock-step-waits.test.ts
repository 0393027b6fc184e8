import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, mock, test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { startAdminServer } from '../../lib/admin/admin-server';
import type { GatewayConfig } from '../../lib/config/types';
import type { RequestContext } from '../../lib/http/route';
import { createMtlsAdmission } from '../../lib/mtls/mtls-admission';
import type { Upstream } from '../../lib/proxy/upstream';
import { StatusBoard } from '../../lib/observe/status-page/status-board';
import { type StatusSources, statusSnapshot } from '../../lib/observe/status-page/status-snapshot';
import { captureLog } from '../support/capture-log';
import { makeDeviceCert } from '../support/device-certs';
import { makeCa, type CertPair } from '../support/tls-material';

// Waits that must not follow a wall clock stepped by NTP (docs/operations.md "Clock steps"):
// each is counted on a monotonic clock the test drives, while Date.now() is stepped a day back.

const DAY_MS = 86_400_000;
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'clock-step-waits-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => mock.restoreAll());

/** Date.now() from now on reads `ms` off the real time (negative: stepped back). */
function stepWallClock(ms: number): void {
  const real = Date.now.bind(Date);
  mock.method(Date, 'now', () => real() + ms);
}

function status(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/api/status' }, (res: IncomingMessage) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    }).on('error', reject);
  });
}

test('status page refusals: one warning a minute on the monotonic clock, whatever the wall clock does', async () => {
  let monotonic = 0;
  const captured = captureLog('debug');
  const admin = startAdminServer({
    listen: '127.0.0.1:0',
    log: captured.log,
    sources: {} as never,
    isLocalPeer: () => false,
    clock: () => monotonic,
  });
  try {
    await admin.ready;
    const port = admin.address()!.port;
    const refusals = () => captured.lines.filter((l) => l.includes('status page refused to a peer off loopback'));
    const warnings = () => refusals().filter((l) => l.includes('level=warning')).length;

    // The first refusal warns, even in the process's first minute (a monotonic clock near 0).
    assert.equal(await status(port), 403);
    assert.equal(warnings(), 1);
    monotonic += 30_000;
    assert.equal(await status(port), 403);
    assert.equal(warnings(), 1, 'half a minute later: at debug');
    assert.equal(refusals().length, 2);

    // NTP steps the wall clock a day back; a minute later on the monotonic clock, a warning again.
    stepWallClock(-DAY_MS);
    monotonic += 31_000;
    assert.equal(await status(port), 403);
    assert.equal(warnings(), 2, refusals().join(''));

    // A step forward does not let a second warning through within the minute.
    stepWallClock(DAY_MS);
    monotonic += 1_000;
    assert.equal(await status(port), 403);
    assert.equal(warnings(), 2, refusals().join(''));
  } finally {
    await admin.close();
  }
});

// mTLS admission after a CA reload: for the TLS handshake timeout and a margin, OpenSSL's verdict
// may be the old CA's, so chains are verified by hand; after that OpenSSL's is taken again. The
// socket double plays a connection OpenSSL verified (socket.authorized), with a certificate of the
// old CA: only verification by hand refuses it, which tells whether the window is still open.
let oldCa: CertPair;
let newCa: CertPair;
let oldDevice: X509Certificate;

function mtlsSettings(ca: string): GatewayConfig['Features']['mTLS'] {
  return {
    Enabled: true,
    CACertificate: ca,
    BlacklistPath: '',
    CRLPath: '',
    MenderUsername: 'gateway@example.com',
    MenderPassword: 'unused',
    EnableCache: false,
    InsecureSkipClientExpireAfter: false,
    CacheLifetime: '5m',
    RequireAuthKeyMatchesCertificate: false,
    IdentityAttribute: '',
    IdentityCertificateField: 'CN',
    AllowKeyReplacement: false,
    AllowPlainHTTP: false,
  };
}

/** A connection OpenSSL verified, presenting `cert` (a fresh socket: no verdict kept from before). */
function verifiedConnection(cert: X509Certificate): TLSSocket {
  return {
    authorized: true,
    authorizationError: null,
    getPeerCertificate: () => ({ raw: cert.raw, fingerprint256: cert.fingerprint256, issuer: { CN: 'Old CA' } }),
    getPeerX509Certificate: () => cert,
  } as unknown as TLSSocket;
}

test('mTLS: after a CA reload, chains are verified by hand for the window on the monotonic clock, not longer after a step back', () => {
  const caDir = join(dir, 'cas');
  mkdirSync(caDir, { recursive: true });
  oldCa = makeCa(caDir, 'old-ca', '/CN=Old CA');
  newCa = makeCa(caDir, 'new-ca', '/CN=New CA');
  oldDevice = new X509Certificate(readFileSync(makeDeviceCert(caDir, 'old-device', oldCa).cert));

  let monotonic = 1_000;
  const captured = captureLog('debug');
  const admission = createMtlsAdmission(mtlsSettings(oldCa.cert), { target: new URL('http://127.0.0.1:9') } as Upstream, captured.log, {
    clock: () => monotonic,
  });
  const ctx = { requestId: 'r', log: captured.log, clientAddress: '127.0.0.1', protocol: 'https' } as RequestContext;
  const admitted = (): boolean => {
    const socket = verifiedConnection(oldDevice);
    const req = { socket, resume: () => undefined } as unknown as IncomingMessage;
    const res = { headersSent: false, writeHead: () => res, end: () => res };
    return admission.admitRequest(req, res as unknown as ServerResponse, ctx);
  };
  try {
    assert.equal(admitted(), true, 'before the reload OpenSSL verdict is taken');
    assert.ok(admission.reload(mtlsSettings(newCa.cert)), 'the new CA goes to the listeners');
    assert.equal(admitted(), false, 'until the listeners have the new CA: by hand');
    admission.caApplied();
    assert.equal(admitted(), false, 'a handshake begun before the swap: by hand');
    // A step forward does not end the window early (the old CA's verdict is not taken).
    stepWallClock(DAY_MS);
    monotonic += 1_000;
    assert.equal(admitted(), false, 'still by hand after a step forward');
    mock.restoreAll();

    // NTP steps the wall clock a day back; once the window is over on the monotonic clock,
    // OpenSSL's verdict (now the new CA's) is taken again.
    stepWallClock(-DAY_MS);
    monotonic += 60_000;
    assert.equal(admitted(), true, 'the window ended on the monotonic clock');
  } finally {
    admission.close();
  }
});

test("the status page's uptime is counted on the monotonic clock", () => {
  let monotonic = 500;
  const board = new StatusBoard(() => monotonic);
  stepWallClock(-DAY_MS);
  monotonic += 90_000;
  const snapshot = statusSnapshot({ version: 'test' } as StatusSources, board);
  assert.equal(snapshot.uptime_seconds, 90);
});

test('devices active (the last hour) are counted on the monotonic clock, not on the wall clock', () => {
  let mono = 0;
  const board = new StatusBoard(() => mono);
  const wall = Date.now();
  board.deviceSeen('early', '127.0.0.1', 'GET /next', wall);
  mono = 30 * 60_000;
  // NTP steps the wall clock a day ahead: the device seen half an hour ago is still active.
  mock.method(Date, 'now', () => wall + DAY_MS);
  board.deviceSeen('late', '127.0.0.1', 'GET /next', Date.now());
  assert.equal(board.seenWithin(3600_000), 2);
  // Past an hour after the early one on the monotonic clock, only the late one is.
  mono = 80 * 60_000;
  assert.equal(board.seenWithin(3600_000), 1);
  mono = 200 * 60_000;
  assert.equal(board.seenWithin(3600_000), 0);
});
