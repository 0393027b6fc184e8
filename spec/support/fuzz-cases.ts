import { createHmac } from 'node:crypto';

// Seeded hostile requests for the gateway, as raw bytes: request lines, header blocks, JSON
// bodies of the device calls, signed artifact links with one byte changed or a forged expiry,
// Range headers. Each case says what a correct answer looks like; the same seed gives the same
// cases, so a failure is reproduced with FAULTS_FUZZ_SEED.

export type Expect =
  | { kind: 'error' } // a well-formed 4xx/5xx
  | { kind: 'answer' } // any well-formed answer, but no 5xx (the peers are healthy)
  | { kind: 'range'; header: string } // 200 whole, a correct 206, or 416 when unsatisfiable
  | { kind: 'link'; equivalent: boolean }; // not 2xx, unless the link means the same thing

export interface FuzzCase {
  family: string;
  bytes: Buffer;
  expect: Expect;
  head?: boolean;
  /** The message is cut short (a body that never ends): the client half-closes, and a silent close is a fair answer. */
  incomplete?: boolean;
}

export interface FuzzContext {
  /** A valid signed link (path and query) to an artifact of `size` bytes. */
  link: string;
  size: number;
  /** A device JWT the upstream accepts. */
  jwt: string;
  /** The base64 SignatureSecret, to forge expiries with a valid signature. */
  secret: string;
}

/** mulberry32: small, seedable, good enough to pick cases. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const DEVICE_PATHS = [
  '/api/devices/v1/authentication/auth_requests',
  '/api/devices/v1/inventory/device/attributes',
  '/api/devices/v2/inventory/device/attributes',
  '/api/devices/v1/deployments/device/deployments/next',
  '/api/devices/v2/deployments/device/deployments/next',
  '/api/devices/v1/deployments/device/deployments/dep-1/status',
  '/api/devices/v1/deployments/device/deployments/dep-1/log',
  '/api/internal/v1/gateway/alive',
];

export function generateCases(seed: number, count: number, ctx: FuzzContext): FuzzCase[] {
  const rnd = prng(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  const families: (() => FuzzCase)[] = [
    () => requestLine(),
    () => headerBlock(),
    () => framing(),
    () => jsonBody(),
    () => flippedLink(),
    () => expiry(),
    () => range(),
  ];
  const cases: FuzzCase[] = [];
  // Every byte of the link flipped once, then random cases from every family.
  for (let i = 0; i < ctx.link.length && cases.length < count / 3; i++) cases.push(flippedLink(i));
  while (cases.length < count) cases.push(pick(families)());
  return cases;

  function msg(head: string, body: Buffer | string = ''): Buffer {
    return Buffer.concat([Buffer.from(head, 'latin1'), Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8')]);
  }

  function junk(n: number, alphabet = 'latin1'): string {
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet === 'latin1' ? String.fromCharCode(int(256)) : alphabet[int(alphabet.length)];
    return s;
  }

  function requestLine(): FuzzCase {
    const variants: (() => string)[] = [
      () => `${junk(1 + int(12), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ-_!#')} ${pick(DEVICE_PATHS)} HTTP/1.1`,
      () => `GET ${pick(DEVICE_PATHS)} HTTP/${pick(['0.9', '1.2', '2.0', '9.9', '1.1x', '', '1'])}`,
      () => `GET ${junk(1 + int(64))} HTTP/1.1`,
      () => `GET /${'a'.repeat(8 * 1024 + int(64 * 1024))} HTTP/1.1`,
      () => `GET http://evil.example${pick(DEVICE_PATHS)} HTTP/1.1`,
      () => `GET  ${pick(DEVICE_PATHS)}  HTTP/1.1`,
      () => `GET ${pick(DEVICE_PATHS)}`,
      () => `${pick(['GET', 'POST'])} ${pick(DEVICE_PATHS)}/../../${pick(['etc/passwd', '%2e%2e/%2e%2e', '..%00', '%ff%fe'])} HTTP/1.1`,
      () => `CONNECT 127.0.0.1:22 HTTP/1.1`,
      () => `GET *${pick(['', ' '])} HTTP/1.1`,
      () => junk(1 + int(200)),
      () => `GET ${ctx.link}${junk(1 + int(4), '\x00\x01\x7f\r\t ')} HTTP/1.1`,
    ];
    const v = int(variants.length);
    const line = variants[v]();
    // Node's parser takes extra spaces, other versions and a missing version (HTTP/0.9 style) as a plain request.
    const lenient = v === 1 || v === 5 || v === 6 || v === 11;
    return {
      family: 'request line',
      bytes: msg(`${line}\r\nHost: gw\r\nConnection: close\r\n\r\n`),
      expect: lenient ? { kind: 'answer' } : { kind: 'error' },
    };
  }

  function headerBlock(): FuzzCase {
    const path = pick(DEVICE_PATHS);
    const variants: (() => string)[] = [
      () => `X-Big: ${'x'.repeat(16 * 1024 + int(64 * 1024))}\r\n`,
      () => Array.from({ length: 200 + int(3000) }, (_, i) => `X-${i}: ${i}\r\n`).join(''),
      () => `${junk(1 + int(20), 'abc()<>@,;:\\"/[]?={} \t')}: v\r\n`,
      () => `X-Ctl: a${junk(1, '\x00\x01\x0b\x7f')}b\r\n`,
      () => `X-Fold: a\r\n ${junk(4, 'abc')}\r\n`,
      () => `Host: a\r\nHost: b\r\n`,
      () => `Content-Length: 5\r\nContent-Length: 6\r\n`,
      () => `Content-Length: ${pick(['-1', '1e3', '0x10', '99999999999999999999', ' 5 5', '+5'])}\r\n`,
      () => `Content-Length: 3\r\nTransfer-Encoding: chunked\r\n`,
      () =>
        `Transfer-Encoding: ${pick(['chunked, identity', 'identity', 'gzip', 'xchunked', 'chunked\x0b', 'CHUNKED ', 'chunked, chunked'])}\r\n`,
      () => `Expect: ${pick(['100-continue', 'x'])}\r\nContent-Length: 1\r\n`,
      () => `Authorization: Bearer ${junk(1 + int(400), 'abcXYZ019.-_+/=')}\r\n`,
      () => `Range: ${junk(1 + int(40))}\r\n`,
      () => `${junk(1 + int(30), 'abcdefghij-')}\r\n`,
    ];
    const headers = pick(variants)();
    const body = /Content-Length: 1\r/.test(headers) ? 'x' : /Transfer-Encoding/.test(headers) ? '0\r\n\r\n' : '';
    // Odd Transfer-Encodings are the smuggling tests' business (spec/faults/smuggling.test.ts): here only well-formed.
    const framingConflict =
      /Content-Length: 5\r\nContent-Length: 6|Content-Length: 3\r\nTransfer-Encoding|Content-Length: (-1|1e3|0x10|99999999999999999999| 5 5|\+5)/.test(
        headers,
      );
    const bad =
      framingConflict || /X-Big|X-Ctl|X-Fold|\r\n[^:\r\n]*\r\n$/.test(headers) || /^[^:]*[()<>@,;\\"/[\]?={} \t][^:]*: v/.test(headers);
    return {
      family: 'headers',
      bytes: msg(`GET ${path} HTTP/1.1\r\nHost: gw\r\n${headers}Connection: close\r\n\r\n${body}`),
      expect: bad ? { kind: 'error' } : { kind: 'answer' },
    };
  }

  function framing(): FuzzCase {
    const path = pick(DEVICE_PATHS.slice(0, 7));
    const chunks = pick([
      `5\r\nhello\r\n0\r\n\r\n`,
      `${pick(['-1', 'zz', '1;ext=1', 'ffffffffffffffffffff', '5 '])}\r\nhello\r\n0\r\n\r\n`,
      `5\r\nhelloXX0\r\n\r\n`,
      `0\r\nX-Trailer: ${'y'.repeat(int(20_000))}\r\n\r\n`,
      `3\r\nabc\r\n`,
    ]);
    const good = chunks.startsWith('5\r\nhello\r\n0') || chunks.startsWith('1;ext=1');
    return {
      family: 'chunked framing',
      incomplete: chunks === '3\r\nabc\r\n',
      bytes: msg(
        `${pick(['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])} ${path} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${ctx.jwt}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunks}`,
      ),
      expect: good ? { kind: 'answer' } : { kind: 'error' },
    };
  }

  function jsonBody(): FuzzCase {
    const depth = 1 + int(50_000);
    const bodies: (() => Buffer)[] = [
      () => Buffer.from('['.repeat(depth) + ']'.repeat(depth)),
      () => Buffer.from('{"a":'.repeat(depth) + '1' + '}'.repeat(depth)),
      () =>
        Buffer.from(
          `[{"name":"x","value":${pick(['1e999999', '-1e999999', '9'.repeat(5000), '0.' + '0'.repeat(5000) + '1', 'NaN', 'Infinity', '-0'])}}]`,
        ),
      () =>
        Buffer.concat([Buffer.from('[{"name":"'), Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80]), Buffer.from('","value":"v"}]')]),
      () => Buffer.from(JSON.stringify({ id_data: junk(int(200)), pubkey: junk(int(300)), tenant_token: '' })),
      () => Buffer.from(`{"id_data":"{\\"mac\\":\\"${'a'.repeat(int(100_000))}\\"}","pubkey":"x"}`),
      () => Buffer.from(JSON.stringify(Array.from({ length: int(5000) }, (_, i) => ({ name: `a${i}`, value: i })))),
      () => Buffer.from(junk(int(2000))),
      () =>
        Buffer.from(
          `{"device_provides":{"artifact_name":"${'\\u0000'.repeat(int(50))}","device_type":${pick(['null', '[]', '{}', '1', '"x"'])}}}`,
        ),
      () => Buffer.from(`{"status":"${pick(['success', 'failure', 'downloading', '', 'x'.repeat(int(9000))])}"}`),
      () => Buffer.from(`{"__proto__":{"polluted":1},"constructor":{"prototype":{"x":1}}}`),
    ];
    const body = pick(bodies)();
    const method = pick(['POST', 'PUT', 'PATCH']);
    const auth = rnd() < 0.8 ? `Authorization: Bearer ${ctx.jwt}\r\n` : '';
    return {
      family: 'JSON bodies',
      bytes: msg(
        `${method} ${pick(DEVICE_PATHS.slice(0, 7))} HTTP/1.1\r\nHost: gw\r\n${auth}Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
        body,
      ),
      expect: { kind: 'answer' },
    };
  }

  function flippedLink(at?: number): FuzzCase {
    const i = at ?? int(ctx.link.length);
    const alphabet = 'AZaz09-_%?&=.:/+~ \x00\x7f\xff';
    let ch = alphabet[int(alphabet.length)];
    if (ch === ctx.link[i]) ch = ch === 'A' ? 'B' : 'A';
    const target = ctx.link.slice(0, i) + ch + ctx.link.slice(i + 1);
    let equivalent = false;
    try {
      // Only a different case of a percent-escape's hex digit leaves the meaning unchanged.
      equivalent = decodeURIComponent(target) === decodeURIComponent(ctx.link);
    } catch {
      equivalent = false;
    }
    return {
      family: 'signed links',
      bytes: msg(`GET ${target} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`),
      expect: { kind: 'link', equivalent },
    };
  }

  function expiry(): FuzzCase {
    const q = ctx.link.indexOf('?');
    const token = ctx.link.slice(0, q).split('/').pop()!;
    const expire = pick([
      '9999-12-31T23:59:59Z',
      '99999-01-01T00:00:00Z',
      '+275760-09-13T00:00:00Z',
      '2026-13-45T99:99:99Z',
      '0000-00-00T00:00:00Z',
      '1970-01-01T00:00:00Z',
      '2026-02-30T00:00:00Z',
      '2038-01-19T03:14:08Z',
      `${'9'.repeat(int(300))}-01-01T00:00:00Z`,
      '',
      'now',
      '-1',
      '1e308',
    ]);
    const signature = createHmac('sha256', Buffer.from(ctx.secret, 'base64'))
      .update(`GATEWAY-ARTIFACT\n${token}\nx-men-expire=${expire}\n`)
      .digest('base64url');
    const target = `${ctx.link.slice(0, q)}?x-men-expire=${encodeURIComponent(expire)}&x-men-signature=${signature}`;
    // A real date in the future, signed with the secret, is a valid link; anything else is refused.
    const at = Date.parse(expire);
    const valid =
      /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/.test(expire) &&
      Number.isFinite(at) &&
      new Date(at).toISOString().slice(0, 19) + 'Z' === expire &&
      at > Date.now();
    return {
      family: 'link expiry',
      bytes: msg(`GET ${target} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`),
      expect: { kind: 'link', equivalent: valid },
    };
  }

  function range(): FuzzCase {
    const n = () => String(pick([0, 1, ctx.size - 1, ctx.size, ctx.size + 1, int(ctx.size), int(ctx.size * 2)]));
    const header = pick([
      () => `bytes=${n()}-${n()}`,
      () => `bytes=${n()}-`,
      () => `bytes=-${n()}`,
      () => 'bytes=-0',
      () => 'bytes=0-0',
      () => `bytes=${n()}-${n()},${n()}-${n()}`,
      () => `bytes=0-1,2-3,${'4-5,'.repeat(int(2000))}6-7`,
      () => `bytes=${'9'.repeat(10 + int(400))}-`,
      () => `bytes=0-${'9'.repeat(10 + int(400))}`,
      () => `bytes=-${'9'.repeat(10 + int(30))}`,
      () => `bytes=${n()}-${n()}`.replace('=', pick([' = ', '=', ' ='])),
      () => `items=0-1`,
      () => `bytes=a-b`,
      () => `bytes=--1`,
      () => `bytes=1-0`,
      () => `bytes=0x10-`,
      () => `bytes=1e3-`,
      () => `bytes= ${n()} - ${n()} `,
      () => `BYTES=${n()}-`,
    ])();
    const head = rnd() < 0.15;
    return {
      family: 'ranges',
      head,
      bytes: msg(`${head ? 'HEAD' : 'GET'} ${ctx.link} HTTP/1.1\r\nHost: gw\r\nRange: ${header}\r\nConnection: close\r\n\r\n`),
      expect: { kind: 'range', header },
    };
  }
}
