// The dates a gateway meets over months: days left, the earliest notAfter of a CA bundle, when a
// certificate or a CRL is warned about, the gauges (absent when a date is not known) and the
// daily reminder. Certificates are made with openssl at run time.

import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  certificateExpiry,
  certificateWarning,
  crlWarning,
  daysLeft,
  earliestNotAfter,
  notAftersOf,
} from '../../lib/observe/certificate-expiry';
import { metricsRegistry } from '../../lib/observe/metrics';
import { captureLog } from '../support/capture-log';
import { makeIntermediate } from '../support/device-certs';
import { makeCa, makeLeaf } from '../support/tls-material';

const DAY = 86_400_000;
const dir = mkdtempSync(join(tmpdir(), 'gw-expiry-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const ca = makeCa(dir);
const expired = makeIntermediate(dir, 'expired-ca', ca, { fromDays: -40, toDays: -5 });
const soon = makeLeaf(dir, 'soon', ca, { days: 10 });
const notAfter = (path: string) => new X509Certificate(readFileSync(path)).validToDate.getTime();

describe('days left', () => {
  const now = Date.UTC(2026, 11, 7, 12);
  it('counts whole days, rounded down, negative once past', () => {
    assert.equal(daysLeft(now + 10 * DAY, now), 10);
    assert.equal(daysLeft(now + 10 * DAY - 1, now), 9);
    assert.equal(daysLeft(now + DAY / 2, now), 0);
    assert.equal(daysLeft(now, now), 0);
    assert.equal(daysLeft(now - 1, now), -1);
    assert.equal(daysLeft(now - 3.5 * DAY, now), -4);
  });
});

describe('notAfter of a PEM file', () => {
  it('a bundle: every certificate in file order, the earliest is the one that ends first', () => {
    const bundle = readFileSync(ca.cert, 'utf8') + readFileSync(expired.cert, 'utf8') + readFileSync(soon.cert, 'utf8');
    assert.deepEqual(notAftersOf(bundle), [notAfter(ca.cert), notAfter(expired.cert), notAfter(soon.cert)]);
    assert.equal(earliestNotAfter(bundle), notAfter(expired.cert));
    assert.equal(earliestNotAfter(readFileSync(ca.cert)), notAfter(ca.cert), 'a Buffer as well as a string');
  });
  it('no certificate, or a broken block, gives no date', () => {
    assert.equal(earliestNotAfter('not a certificate'), undefined);
    assert.equal(earliestNotAfter('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'), undefined);
  });
});

describe('warnings', () => {
  const now = Date.UTC(2026, 11, 7, 12);
  it('a certificate: nothing 30 days or more ahead, a warning within 30 days, an error once past', () => {
    assert.equal(certificateWarning('server', '/etc/s.crt', now + 30 * DAY, now), undefined);
    const in29 = certificateWarning('server', '/etc/s.crt', now + 30 * DAY - 1000, now);
    assert.deepEqual(in29, {
      level: 'warn',
      message: 'certificate expires soon',
      fields: { certificate: 'server', path: '/etc/s.crt', not_after: '2027-01-06T11:59:59.000Z', days_left: 29 },
      line: 'certificate expires soon: /etc/s.crt notAfter 2027-01-06T11:59:59.000Z (29 days left)',
    });
    const past = certificateWarning('client_ca', '/etc/ca.crt', now - 3.5 * DAY, now);
    assert.equal(past?.level, 'error');
    assert.equal(past?.message, 'certificate expired');
    assert.equal(past?.fields.days_ago, 3);
    assert.equal(past?.line, 'certificate expired: /etc/ca.crt notAfter 2026-12-04T00:00:00.000Z (3 days ago)');
    assert.equal(certificateWarning('upstream_ca', '/x', now, now)?.level, 'error', 'notAfter itself is past');
  });
  it('a CRL: nothing while current or without a nextUpdate, a warning once past it', () => {
    assert.equal(crlWarning('/etc/ca.crl', now + 1000, now), undefined);
    assert.equal(crlWarning('/etc/ca.crl', null, now), undefined);
    const stale = crlWarning('/etc/ca.crl', now - DAY, now);
    assert.equal(stale?.level, 'warn');
    assert.equal(stale?.message, 'CRL is past its nextUpdate: still enforced');
    assert.equal(stale?.fields.next_update, '2026-12-06T12:00:00.000Z');
    assert.match(stale?.line ?? '', /^CRL is past its nextUpdate: still enforced: \/etc\/ca\.crl nextUpdate 2026-12-06T12:00:00\.000Z; /);
  });
});

const scrape = async (): Promise<string[]> =>
  (await metricsRegistry.metrics()).split('\n').filter((l) => /^mender_gateway_(certificate_expiry|crl_next_update)/.test(l));

describe('gauges and the daily reminder', () => {
  it('each date set is a series in Unix seconds; forgotten, it is gone; a replaced watcher does not forget its successor', async () => {
    const { log, lines } = captureLog('info');
    const first = {};
    const second = {};
    certificateExpiry.certificate('server', soon.cert, readFileSync(soon.cert), log, 'leaf');
    const bundle = readFileSync(ca.cert, 'utf8') + readFileSync(expired.cert, 'utf8');
    certificateExpiry.certificate('client_ca', 'bundle.crt', bundle, log, 'earliest', first);
    certificateExpiry.crl('ca.crl', Date.UTC(2026, 0, 1), log, first);
    assert.deepEqual(await scrape(), [
      `mender_gateway_certificate_expiry_timestamp_seconds{certificate="server"} ${notAfter(soon.cert) / 1000}`,
      `mender_gateway_certificate_expiry_timestamp_seconds{certificate="client_ca"} ${notAfter(expired.cert) / 1000}`,
      `mender_gateway_crl_next_update_timestamp_seconds ${Date.UTC(2026, 0, 1) / 1000}`,
    ]);
    const said = lines.join('');
    assert.match(said, /level=warning msg="certificate expires soon" certificate=server .*days_left=9\n/);
    assert.match(said, /level=error msg="certificate expired" certificate=client_ca path=bundle\.crt .*days_ago=5\n/);
    assert.match(said, /level=warning msg="CRL is past its nextUpdate: still enforced" path=ca\.crl next_update=2026-01-01T00:00:00\.000Z/);

    // A reload started the next CRL watcher before closing the first one.
    certificateExpiry.crl('ca.crl', null, log, second);
    certificateExpiry.forget('crl', first);
    certificateExpiry.forget('client_ca', second);
    assert.deepEqual(await scrape(), [
      `mender_gateway_certificate_expiry_timestamp_seconds{certificate="server"} ${notAfter(soon.cert) / 1000}`,
      `mender_gateway_certificate_expiry_timestamp_seconds{certificate="client_ca"} ${notAfter(expired.cert) / 1000}`,
    ]);
    certificateExpiry.forget('crl', second);
    certificateExpiry.forget('client_ca', first);
    certificateExpiry.forget('server');
    assert.deepEqual(await scrape(), []);
  });

  it('says again once a day what still holds, and a reload says each warning once', (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    const { log, lines } = captureLog('info');
    const count = (re: RegExp) => lines.filter((l) => re.test(l)).length;
    certificateExpiry.certificate('server', soon.cert, readFileSync(soon.cert), log, 'leaf');
    certificateExpiry.certificate('upstream_ca', ca.cert, readFileSync(ca.cert), log, 'earliest');
    assert.equal(count(/certificate expires soon/), 1);
    t.mock.timers.tick(DAY - 1);
    assert.equal(count(/certificate expires soon/), 1);
    t.mock.timers.tick(1);
    assert.equal(count(/certificate expires soon/), 2);
    t.mock.timers.tick(DAY);
    assert.equal(count(/certificate expires soon/), 3);
    assert.equal(lines.length, 3, 'a CA ten years ahead is never warned about');

    // A reload that read the server certificate again says it once, not twice.
    const mark = certificateExpiry.mark();
    certificateExpiry.certificate('server', soon.cert, readFileSync(soon.cert), log, 'leaf');
    certificateExpiry.remind(mark);
    assert.equal(count(/certificate expires soon/), 4);
    certificateExpiry.remind();
    assert.equal(count(/certificate expires soon/), 5);

    certificateExpiry.forget('server');
    certificateExpiry.forget('upstream_ca');
    t.mock.timers.tick(DAY);
    assert.equal(count(/certificate expires soon/), 5, 'nothing watched, nothing said');
  });
});
