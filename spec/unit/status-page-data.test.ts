import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mtlsReasonLabel, methodLabel } from '../../lib/observe/metrics';
import { deploymentOfStatusPath } from '../../lib/device-api';
import { deviceIdFromAuthorization, statusOfReport } from '../../lib/observe/status-page/device-id';
import { StatusBoard } from '../../lib/observe/status-page/status-board';
import { statusSnapshot } from '../../lib/observe/status-page/status-snapshot';

// What the status page and the metrics take from a request, as pure tables.

const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const jwt = (payload: unknown): string => `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64(payload)}.c2lnbmF0dXJl`;

describe('deviceIdFromAuthorization', () => {
  const cases: [string, string | undefined, string | undefined][] = [
    [
      'a device JWT',
      `Bearer ${jwt({ sub: '0b5f3c1e-8d2a-4c5e-9a71-3f2b1d0c9e88', 'mender.device': true })}`,
      '0b5f3c1e-8d2a-4c5e-9a71-3f2b1d0c9e88',
    ],
    ['lower-case scheme', `bearer ${jwt({ sub: 'dev-1' })}`, 'dev-1'],
    ['no header', undefined, undefined],
    ['basic auth', 'Basic dXNlcjpwYXNz', undefined],
    ['two segments', `Bearer ${b64({})}.${b64({ sub: 'x' })}`, undefined],
    ['payload not JSON', `Bearer ${b64({})}.${b64('not json')}.sig`, undefined],
    ['payload an array', `Bearer ${b64({})}.${b64([1])}.sig`, undefined],
    ['sub missing', `Bearer ${jwt({ iss: 'Mender' })}`, undefined],
    ['sub a number', `Bearer ${jwt({ sub: 42 })}`, undefined],
    ['sub with markup or spaces is refused', `Bearer ${jwt({ sub: '<img src=x onerror=alert(1)>' })}`, undefined],
    ['sub too long', `Bearer ${jwt({ sub: 'a'.repeat(129) })}`, undefined],
  ];
  for (const [name, header, want] of cases) it(name, () => assert.equal(deviceIdFromAuthorization(header), want));
});

describe('status reports', () => {
  const paths: [string, string | undefined][] = [
    ['/api/devices/v1/deployments/device/deployments/d-1/status', 'd-1'],
    // No v2 status path exists (device-protocol.md): not a report the board records.
    ['/api/devices/v2/deployments/device/deployments/d-2/status', undefined],
    ['/api/devices/v1/deployments/device/deployments/d-1/log', undefined],
    ['/api/devices/v1/deployments/device/deployments/next', undefined],
    ['/api/devices/v1/deployments/device/deployments/a/b/status', undefined],
  ];
  for (const [path, want] of paths) it(`path ${path}`, () => assert.equal(deploymentOfStatusPath(path), want));
  const bodies: [string, string | undefined][] = [
    ['{"status":"downloading"}', 'downloading'],
    ['{"status":"already-installed","substate":"x"}', 'already-installed'],
    ['{"status":"<b>"}', undefined],
    ['{"status":1}', undefined],
    ['nope', undefined],
  ];
  for (const [body, want] of bodies) it(`body ${body}`, () => assert.equal(statusOfReport(body), want));
});

describe('bounded metric labels', () => {
  const methods: [string | undefined, string][] = [
    ['GET', 'GET'],
    ['PATCH', 'PATCH'],
    ['PROPFIND', 'OTHER'],
    ['get', 'OTHER'],
    [undefined, 'OTHER'],
  ];
  for (const [m, want] of methods) it(`method ${String(m)}`, () => assert.equal(methodLabel(m), want));
  const reasons: [string, string][] = [
    ['client certificate serial 1A2B is blocklisted', 'blocklisted'],
    ["client certificate serial 1A2B is revoked by the CA's CRL", 'revoked'],
    ['no client certificate', 'no_certificate'],
    ['client certificate refused: CERT_HAS_EXPIRED', 'expired'],
    ['client certificate refused: certificate is not yet valid', 'not_yet_valid'],
    ['client certificate refused: UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'untrusted'],
  ];
  for (const [reason, want] of reasons) it(`mTLS reason → ${want}`, () => assert.equal(mtlsReasonLabel(reason), want));
});

describe('statusSnapshot', () => {
  it('devices most recent first with their deployment, cache entries by last served, hits, bytes saved, upstream health', () => {
    const board = new StatusBoard();
    board.deviceSeen('dev-a', '10.0.0.2', 'GET /x', 1_000);
    board.deviceSeen('dev-b', '10.0.0.3', 'GET /y', 2_000);
    board.deploymentStatus('dev-a', 'dep-1', 'downloading', 2_500);
    board.deviceSeen('dev-a', '10.0.0.2', 'PUT /z', 3_000);
    board.deploymentStatus('nobody', 'dep-1', 'success'); // never seen: ignored
    board.cacheHit('e1');
    board.cacheHit('e1');
    board.bytesServed = 3000;
    board.bytesFetched = 1000;
    board.upstreamAnswered(200, 4_000);
    board.upstreamAnswered(502, 5_000);
    const cache = {
      entries: () => [
        { id: 'e2', key: 's3.local/bucket/old', size: 10, lastServed: 100 },
        { id: 'e1', key: 's3.local/bucket/new', size: 20, lastServed: 200 },
      ],
      fills: () => [{ id: 'e3', key: 's3.local/bucket/filling', size: 100, written: 40, state: 'growing' }],
    };
    const s = statusSnapshot({ version: '1.2.3', upstreamUrl: 'https://mender.example/', cache }, board, 10_000);
    assert.deepEqual(
      s.devices.map((d) => [d.id, d.last_request, d.deployment?.status ?? null]),
      [
        ['dev-a', 'PUT /z', 'downloading'],
        ['dev-b', 'GET /y', null],
      ],
    );
    assert.deepEqual(
      s.cache.entries.map((e) => [e.artifact, e.hits]),
      [
        ['s3.local/bucket/new', 2],
        ['s3.local/bucket/old', 0],
      ],
    );
    assert.deepEqual(s.cache.fills, [{ artifact: 's3.local/bucket/filling', size: 100, written: 40, state: 'growing' }]);
    assert.equal(s.cache.bytes_saved, 2000);
    assert.equal(s.upstream.healthy, false);
    assert.deepEqual(s.upstream.last_error, { at: new Date(5_000).toISOString(), code: 502 });
    board.upstreamAnswered(204, 6_000);
    const again = statusSnapshot({ version: '1.2.3', upstreamUrl: 'x' }, board, 10_000);
    assert.equal(again.upstream.healthy, true);
    assert.equal(again.cache.enabled, false);
    assert.equal(again.cache.bytes_saved, 0, 'without the cache nothing is saved');
  });

  it('keeps at most 1000 devices, dropping the least recently seen', () => {
    const board = new StatusBoard();
    for (let i = 0; i < 1005; i++) board.deviceSeen(`dev-${i}`, 'a', 'GET /', i);
    const ids = board.recentDevices(2000).map((d) => d.id);
    assert.equal(ids.length, 1000);
    assert.equal(ids[0], 'dev-1004');
    assert.ok(!ids.includes('dev-4'));
  });

  it('stays within its caps under 100,000 devices and cache entries, and forgets what is past its age', () => {
    let now = 0;
    const board = new StatusBoard(() => now);
    for (let i = 0; i < 100_000; i++) {
      board.deviceSeen(`dev-${i}`, '10.0.0.1', 'GET /', i);
      board.cacheHit(`entry-${i}`);
    }
    assert.deepEqual(board.sizes, { devices: 1000, hits: 10_000 });
    assert.equal(board.hitsOf('entry-99999'), 1);
    assert.equal(board.hitsOf('entry-0'), 0, 'the oldest counter went');
    now += 24 * 3600_000; // a day without a request
    board.cacheHit('entry-99999');
    assert.deepEqual(board.recentDevices(), [], 'no device of the day before is recent');
    board.deviceSeen('dev-new', '10.0.0.2', 'GET /', 1);
    assert.equal(board.sizes.devices, 1);
    now += 7 * 24 * 3600_000 - 1;
    board.cacheHit('entry-new');
    assert.equal(board.hitsOf('entry-99999'), 2, 'a counter served within the week stays');
    assert.equal(board.sizes.hits, 2, 'counters unserved for a week went');
  });
});
