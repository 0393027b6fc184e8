import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDomainAllowlist } from '../../lib/artifacts/domain-allowlist';

const list = createDomainAllowlist([
  's3.amazonaws.com',
  'S3.My-Min.IO',
  '.r2.cloudflarestorage.com',
  'bücher.de',
  '127.0.0.1',
  's3.docker.mender.io.',
  'https://blob.example.net:8443/x',
  'minio.local:9000',
  '::1',
]);

const cases: [url: string, allowed: boolean, why: string][] = [
  ['https://s3.amazonaws.com/bucket/key?X-Amz-Signature=x', true, 'exact host'],
  ['https://hosted-mender-artifacts.s3.amazonaws.com/key', true, 'subdomain'],
  ['https://a.b.s3.amazonaws.com/key', true, 'deeper subdomain'],
  ['https://S3.AMAZONAWS.COM/key', true, 'uppercase host'],
  ['https://s3.amazonaws.com./key', true, 'trailing dot on the host'],
  ['https://s3.amazonaws.com:9000/key', true, 'ports are not part of the rule'],
  ['https://s3.my-min.io/key', true, 'uppercase entry'],
  ['https://c271964d41749feb10da762816c952ee.r2.cloudflarestorage.com/key', true, '.suffix entry'],
  ['https://r2.cloudflarestorage.com/key', true, '.suffix entry matches the domain itself'],
  ['https://bücher.de/key', true, 'IDN entry and IDN host'],
  ['https://xn--bcher-kva.de/key', true, 'punycode host, IDN entry'],
  ['https://s3.docker.mender.io/key', true, 'entry with trailing dot'],
  ['https://blob.example.net/key', true, 'URL entry: its host counts'],
  ['https://minio.local/key', true, 'host:port entry: its host counts'],
  ['http://127.0.0.1:9000/bucket/key', true, 'IP exact'],
  ['http://[::1]:9000/bucket/key', true, 'IPv6 exact'],
  ['https://evil-s3.amazonaws.com/key', false, 'not a label boundary'],
  ['https://s3.amazonaws.com.attacker.net/key', false, 'listed domain as a prefix of another'],
  ['https://s3.amazonaws.com%2eattacker.net/key', false, 'encoded dot decodes to another domain'],
  ['https://s3.amazonaws.com@attacker.net/key', false, 'userinfo: the real host is attacker.net'],
  ['https://user:pw@s3.amazonaws.com/key', false, 'userinfo on a listed host is refused'],
  ['https://amazonaws.com/key', false, 'parent of a listed domain'],
  ['https://xs3.amazonaws.com/key', false, 'suffix without a dot'],
  ['https://ѕ3.amazonaws.com/key', false, 'Cyrillic look-alike'],
  ['https://bucher.de/key', false, 'IDN without its diacritic'],
  ['http://1.127.0.0.1.nip.io/key', false, 'IP entries never suffix-match'],
  ['http://127.0.0.2/key', false, 'other IP'],
  ['ftp://s3.amazonaws.com/key', false, 'not http(s)'],
  ['file:///etc/passwd', false, 'no host'],
];

for (const [url, allowed, why] of cases) {
  test(`${allowed ? 'allows' : 'refuses'} ${url} (${why})`, () => {
    assert.equal(list.allows(new URL(url)), allowed);
  });
}

test('normalized entries are what the log shows', () => {
  assert.deepEqual(list.domains, [
    's3.amazonaws.com',
    's3.my-min.io',
    'r2.cloudflarestorage.com',
    'xn--bcher-kva.de',
    '127.0.0.1',
    's3.docker.mender.io',
    'blob.example.net',
    'minio.local',
    '[::1]',
  ]);
});

test('an empty list allows nothing', () => {
  assert.equal(createDomainAllowlist([]).allows(new URL('https://s3.amazonaws.com/x')), false);
});

for (const bad of ['', '   ', 'a b.com', 'http://', 'host/path', 'user@host']) {
  test(`entry ${JSON.stringify(bad)} is a startup error naming the entry`, () => {
    assert.throws(() => createDomainAllowlist([bad]), /DomainWhitelist: ".*" is not a host name/);
  });
}
