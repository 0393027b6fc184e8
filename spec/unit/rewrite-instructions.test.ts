import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLinkSigner } from '../../lib/artifacts/signed-link';
import { createDomainAllowlist } from '../../lib/artifacts/domain-allowlist';
import { rewriteInstructions, type RewriteOptions } from '../../lib/deployments/rewrite-instructions';

const signer = createLinkSigner({ secret: Buffer.alloc(32, 7), gatewayUrl: 'https://gw.example.com' });
const now = new Date('2026-05-01T00:00:00Z');
const opts: RewriteOptions = { signer, allowlist: createDomainAllowlist(['s3.example.com']), linkTtlMs: 24 * 3600_000, now };
const origin = 'https://s3.example.com/bucket/a7f0?X-Amz-Signature=abc&X-Amz-Expires=86400';

const doc = (source: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    id: 'd1',
    artifact: { id: 'a1', artifact_name: 'release-1', source, device_types_compatible: ['rpi4', 'rpi3'] },
    ...extra,
  });

test('uri becomes a signed gateway link that verifies to the original; every other field unchanged', () => {
  const input = doc(
    { uri: origin, expire: '2026-05-02T00:00:00Z', method: 'GET' },
    { update_control_map: { priority: 2, states: { ArtifactInstall_Enter: { action: 'pause' } } } },
  );
  const result = rewriteInstructions(input, opts);
  assert.equal(result.kind, 'rewritten');
  if (result.kind !== 'rewritten') return;
  const out = JSON.parse(result.body);
  const check = signer.verify(out.artifact.source.uri.slice('https://gw.example.com'.length), now);
  assert.ok(check.ok);
  assert.equal(check.origin.href, origin);
  const expected = JSON.parse(input);
  expected.artifact.source.uri = result.link;
  expected.artifact.source.expire = '2026-05-02T00:00:00Z';
  assert.deepEqual(out, expected);
  assert.equal(result.body, JSON.stringify(expected)); // key order kept
});

const expiryCases: [name: string, sourceExpire: unknown, ttlMs: number, expected: string][] = [
  ['link TTL shorter than the origin expiry', '2026-05-02T00:00:00Z', 30 * 60_000, '2026-05-01T00:30:00Z'],
  ['origin expires first: the link never outlives it', '2026-05-01T01:00:00.5Z', 24 * 3600_000, '2026-05-01T01:00:00Z'],
  ['origin expiry with nanoseconds', '2026-05-01T02:00:00.123456789Z', 24 * 3600_000, '2026-05-01T02:00:00Z'],
  ['no origin expiry', undefined, 3600_000, '2026-05-01T01:00:00Z'],
  ['unparsable origin expiry', 'soon', 3600_000, '2026-05-01T01:00:00Z'],
];
for (const [name, sourceExpire, ttlMs, expected] of expiryCases) {
  test(`expire: ${name} → ${expected}`, () => {
    const source: Record<string, unknown> = { uri: origin };
    if (sourceExpire !== undefined) source.expire = sourceExpire;
    const result = rewriteInstructions(doc(source), { ...opts, linkTtlMs: ttlMs });
    assert.equal(result.kind, 'rewritten');
    if (result.kind === 'rewritten') assert.equal(JSON.parse(result.body).artifact.source.expire, expected);
  });
}

test("expire: the origin's expiry is on the server's clock: what is left of it by its Date, counted from our now", () => {
  const source = { uri: origin, expire: '2026-05-01T00:30:00Z' };
  // Our clock a day ahead of the server's: the URL has 30 minutes left, not minus a day.
  const ahead = rewriteInstructions(doc(source), {
    ...opts,
    now: new Date('2026-05-02T00:00:00Z'),
    serverDate: new Date('2026-05-01T00:00:00Z'),
  });
  assert.equal(ahead.kind === 'rewritten' && JSON.parse(ahead.body).artifact.source.expire, '2026-05-02T00:29:59Z');
  // A day behind: 30 minutes, not a day and 30 minutes (the link TTL, 24 h, does not cap it).
  const behind = rewriteInstructions(doc(source), {
    ...opts,
    now: new Date('2026-04-30T00:00:00Z'),
    serverDate: new Date('2026-05-01T00:00:00Z'),
  });
  assert.equal(behind.kind === 'rewritten' && JSON.parse(behind.body).artifact.source.expire, '2026-04-30T00:29:59Z');
});

const otherCases: [name: string, input: string, kind: string, detail?: RegExp | string][] = [
  ['host not whitelisted', doc({ uri: 'https://evil-s3.example.com/x' }), 'not-whitelisted', 'evil-s3.example.com'],
  [
    'listed host as prefix of another',
    doc({ uri: 'https://s3.example.com.attacker.net/x' }),
    'not-whitelisted',
    's3.example.com.attacker.net',
  ],
  ['port is reported with the host', doc({ uri: 'https://other.example.net:9000/x' }), 'not-whitelisted', 'other.example.net:9000'],
  ['no artifact', '{"id":"d1"}', 'no-link'],
  ['no source', '{"id":"d1","artifact":{"artifact_name":"a"}}', 'no-link'],
  ['uri not a string', doc({ uri: 42 }), 'no-link'],
  ['uri not absolute', doc({ uri: '/relative/path' }), 'no-link'],
  ['truncated JSON', doc({ uri: origin }).slice(0, 40), 'malformed', /not JSON/],
  ['empty body', '', 'malformed', /not JSON/],
  ['an array', '[1,2]', 'malformed', /not a JSON object/],
  ['null', 'null', 'malformed', /not a JSON object/],
];
for (const [name, input, kind, detail] of otherCases) {
  test(`${name} → ${kind}`, () => {
    const result = rewriteInstructions(input, opts);
    assert.equal(result.kind, kind);
    if (result.kind === 'not-whitelisted') assert.equal(result.host, detail);
    if (result.kind === 'malformed') assert.match(result.detail, detail as RegExp);
  });
}
