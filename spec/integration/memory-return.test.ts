// A gateway gives malloc's free memory back after a crowd of devices left: its listeners'
// connections are counted, and after a fall malloc_trim runs (through koffi, on glibc) and says
// so in the log. The fall and the interval are shortened here; FALL_RULE is the shipped one.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { startGateway, type RunningGateway } from '../../lib/gateway';
import { captureLog } from '../support/capture-log';
import { testConfig } from '../support/gateway-config';

const captured = captureLog('info');
let gateway: RunningGateway;

before(async () => {
  gateway = await startGateway(
    testConfig({
      HTTP: { Enabled: true, Listen: '127.0.0.1:0' },
      HTTPS: { Enabled: false },
      UpstreamServer: { URL: 'http://127.0.0.1:9' },
    }),
    captured.log,
    { memoryReturn: { fall: 20, everyMs: 50 } },
  );
});
after(() => gateway.close(0));

test('after 30 device connections closed, the gateway trims (twice: a second pass) and logs what it gave back', async () => {
  const port = gateway.addresses.http!.port;
  const sockets: Socket[] = await Promise.all(
    Array.from({ length: 30 }, async () => {
      const s = connect(port, '127.0.0.1');
      await once(s, 'connect');
      return s;
    }),
  );
  await new Promise((r) => setTimeout(r, 200));
  const trimmed = () => captured.lines.filter((l) => l.includes('returned freed memory to the system')).length;
  assert.equal(trimmed(), 0, 'no trim while they are connected');
  for (const s of sockets) s.destroy();
  for (const end = Date.now() + 5000; trimmed() === 0 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(trimmed(), 2, captured.text());
  assert.match(
    captured.text(),
    /msg="returned freed memory to the system after connections closed" connections=0 pass=1 rss_mb=\d+ rss_after_mb=\d+ pause_ms=\d+/,
  );
});
