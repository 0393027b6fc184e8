import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createUpstream } from '../../lib/proxy/upstream';
import { testConfig } from '../support/gateway-config';

// The agent chosen per artifact origin is remembered for a while, not for every origin ever seen:
// a store with a host per bucket, or presigned links to many hosts, brings new ones for months.

test('100,000 artifact origins: at most 1,024 remembered, one agent per scheme and proxy, an origin unused for an hour forgotten', () => {
  let now = 0;
  const env = { HTTPS_PROXY: 'http://127.0.0.1:3128', NO_PROXY: 'direct.example' };
  const upstream = createUpstream(testConfig({ UpstreamServer: { URL: 'https://127.0.0.1:1' } }).UpstreamServer, env, () => now);
  try {
    const agents = new Set();
    for (let i = 0; i < 100_000; i++) agents.add(upstream.originAgent(new URL(`https://bucket-${i}.s3.example/a?X-Amz-Signature=x`)));
    agents.add(upstream.originAgent(new URL('https://direct.example/a')));
    assert.equal(upstream.originsKnown, 1024);
    assert.equal(agents.size, 2, 'one agent through the proxy, one direct: shared by every origin');
    const proxied = upstream.originAgent(new URL('https://bucket-99999.s3.example/b'));
    assert.ok(agents.has(proxied), 'a remembered origin keeps its agent');
    now = 3600_000;
    upstream.originAgent(new URL('https://bucket-0.s3.example/a'));
    assert.equal(upstream.originsKnown, 1, 'the origins of an hour ago went at the next one');
    assert.equal(upstream.originAgent(new URL('https://direct.example/b')), [...agents][1], 'decided again, the same agent');
  } finally {
    upstream.close();
  }
});
