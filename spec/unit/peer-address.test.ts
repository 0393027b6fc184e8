import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { statusPageExposure } from '../../lib/admin/status-access';
import { isHealthProbe, plainHttpExposure } from '../../lib/mtls/plain-http-guard';
import { isLoopbackAddress, isLoopbackListen } from '../../lib/server/peer-address';

// Who counts as local on the metrics listener (the socket's address, never a header), which
// settings open something private to the LAN, and what the plain HTTP listener lets through with mTLS.

test('loopback peers: 127.0.0.0/8, ::1 and 127.x mapped into IPv6; nothing else', () => {
  for (const a of ['127.0.0.1', '127.0.0.2', '127.255.255.254', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::FFFF:127.1.2.3']) {
    assert.equal(isLoopbackAddress(a), true, a);
  }
  for (const a of [
    undefined,
    '',
    '192.0.2.2',
    '10.0.0.1',
    '0.0.0.0',
    '::',
    '::ffff:192.0.2.2',
    'fe80::1',
    '::2',
    '127.0.0.1.example.com',
    '1127.0.0.1',
    '127.0.0.256',
    'localhost',
  ]) {
    assert.equal(isLoopbackAddress(a), false, String(a));
  }
});

test('loopback listen settings: a loopback host only; every interface, other hosts and bad values are not', () => {
  for (const l of ['127.0.0.1:9102', '[::1]:9102', 'localhost:9102', '127.0.0.2:0']) assert.equal(isLoopbackListen(l), true, l);
  for (const l of [':9102', '0.0.0.0:9102', '[::]:9102', '192.0.2.2:9102', 'gateway.example.com:9102', 'nonsense']) {
    assert.equal(isLoopbackListen(l), false, l);
  }
});

test('the status page warning: only when it is on, open to other peers, and the listener is not loopback', () => {
  const m = (Enabled: boolean, Listen: string, StatusPageAllowRemote: boolean) =>
    statusPageExposure({ Enabled, Listen, StatusPageAllowRemote });
  assert.match(m(true, ':9102', true) ?? '', /^Metrics\.StatusPageAllowRemote: .*Metrics\.Listen :9102/);
  assert.equal(m(true, ':9102', false), undefined);
  assert.equal(m(true, '127.0.0.1:9102', true), undefined);
  assert.equal(m(false, ':9102', true), undefined);
});

test('the plain HTTP warning: only with mTLS, AllowPlainHTTP and the HTTP listener on', () => {
  const c = (mtls: boolean, allow: boolean, http: boolean) =>
    plainHttpExposure({ HTTP: { Enabled: http, Listen: ':8080' }, Features: { mTLS: { Enabled: mtls, AllowPlainHTTP: allow } } });
  assert.match(c(true, true, true) ?? '', /^Features\.mTLS\.AllowPlainHTTP: .*HTTP\.Listen :8080/);
  assert.equal(c(true, false, true), undefined);
  assert.equal(c(false, true, true), undefined);
  assert.equal(c(true, true, false), undefined);
});

test('the health probe on plain HTTP: GET or HEAD of its exact path (a query string aside), nothing near it', () => {
  const probe = (method: string, url: string) => isHealthProbe({ method, url } as IncomingMessage);
  const ALIVE = '/api/internal/v1/gateway/alive';
  assert.equal(probe('GET', ALIVE), true);
  assert.equal(probe('HEAD', ALIVE), true);
  assert.equal(probe('GET', `${ALIVE}?x=1`), true);
  for (const [method, url] of [
    ['POST', ALIVE],
    ['OPTIONS', ALIVE],
    ['GET', `http://gw${ALIVE}`],
    ['GET', `${ALIVE}/`],
    ['GET', `/${ALIVE}`],
    ['GET', `${ALIVE}/../../../devices/v1/inventory/device/attributes`],
    ['GET', ALIVE.replace('alive', '%61live')],
    ['GET', ALIVE.toUpperCase()],
    ['GET', `${ALIVE};x`],
  ]) {
    assert.equal(probe(method, url), false, `${method} ${url}`);
  }
});
