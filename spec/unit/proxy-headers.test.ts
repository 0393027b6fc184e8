import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { headersObject, isJson, passedHeaders } from '../../lib/proxy/exchange';
import { upstreamHeaders } from '../../lib/proxy/forward';

// The pass-through's header handling (lib/proxy/forward.ts, exchange.ts): pure, on raw lists.

const raw = (...pairs: string[]) => pairs.map((s) => Buffer.from(s, 'latin1'));

const passed: [name: string, upstream: Buffer[] | string[], device: string[]][] = [
  [
    'nothing to drop',
    raw('Content-Type', 'application/json', 'X-MEN-RequestID', 'r1'),
    ['Content-Type', 'application/json', 'X-MEN-RequestID', 'r1'],
  ],
  [
    'hop-by-hop go, in any case',
    raw(
      'Connection',
      'keep-alive',
      'Keep-Alive',
      'timeout=5',
      'transfer-encoding',
      'chunked',
      'TE',
      'x',
      'Trailer',
      'y',
      'Upgrade',
      'z',
      'Proxy-Connection',
      'w',
      'Date',
      'd',
    ),
    ['Date', 'd'],
  ],
  ['repeated headers stay separate, in order', raw('Set-Cookie', 'a=1', 'set-cookie', 'b=2'), ['Set-Cookie', 'a=1', 'set-cookie', 'b=2']],
  ['latin1 values survive', raw('X-Name', 'caf\u00e9'), ['X-Name', 'caf\u00e9']],
  ['string lists (http.request rawHeaders) too', ['ETag', '"1"', 'Connection', 'close'], ['ETag', '"1"']],
  ['empty', [], []],
];
for (const [name, upstream, device] of passed) {
  test(`passedHeaders: ${name}`, () => assert.deepEqual(passedHeaders(upstream), device));
}

const json: [contentType: string | undefined, expected: boolean][] = [
  ['application/json', true],
  ['application/json; charset=utf-8', true],
  ['Application/JSON', true],
  ['application/problem+json', true],
  ['text/plain', false],
  ['application/jsonl-not', false],
  [undefined, false],
];
for (const [contentType, expected] of json) {
  test(`isJson: ${contentType ?? '(no Content-Type)'} → ${expected}`, () => {
    const list = contentType === undefined ? raw('Content-Length', '2') : raw('Content-Length', '2', 'content-TYPE', contentType);
    assert.equal(isJson(list), expected);
  });
}

test('headersObject: lower-case names, repeats joined with a comma, set-cookie kept as a list', () => {
  assert.deepEqual(
    headersObject(
      raw('Content-Type', 'application/json', 'Vary', 'a', 'vary', 'b', 'Set-Cookie', 'x=1', 'Set-Cookie', 'y=2', 'Set-Cookie', 'z=3'),
    ),
    {
      'content-type': 'application/json',
      vary: 'a, b',
      'set-cookie': ['x=1', 'y=2', 'z=3'],
    },
  );
});

const request: [name: string, device: IncomingHttpHeaders, forRewrite: boolean, upstream: Record<string, unknown>][] = [
  [
    "Host and framing headers are the dialer's",
    {
      host: 'gw.local',
      'transfer-encoding': 'chunked',
      connection: 'keep-alive',
      'keep-alive': '5',
      expect: '100-continue',
      upgrade: 'h2c',
      'content-type': 'application/json',
    },
    false,
    { 'content-type': 'application/json' },
  ],
  [
    'Content-Length, Authorization and forwarded headers pass',
    { 'content-length': '12', authorization: 'Bearer t', 'x-forwarded-for': '10.0.0.1' },
    false,
    { 'content-length': '12', authorization: 'Bearer t', 'x-forwarded-for': '10.0.0.1' },
  ],
  ['a rewritten answer is asked for uncompressed', { 'accept-encoding': 'gzip, br' }, true, { 'accept-encoding': 'identity' }],
  ["otherwise the device's Accept-Encoding stays", { 'accept-encoding': 'gzip, br' }, false, { 'accept-encoding': 'gzip, br' }],
];
for (const [name, device, forRewrite, upstream] of request) {
  test(`upstreamHeaders: ${name}`, () => assert.deepEqual(upstreamHeaders(device, forRewrite), upstream));
}
