import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startGateway, writeGatewayConfig } from '../support/gateway-process';

// `node bin/gateway.js` by hand: the serving process runs with the packaged service's small young
// generation, in the process that was started (same pid: a supervisor's pid file stays right),
// and an operator's own size is left alone.

const canExec = typeof (process as { execve?: unknown }).execve === 'function';
let dir: string;
let configFile: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'young-gen-'));
  configFile = writeGatewayConfig(dir, {
    HTTP: { Enabled: true, Listen: '127.0.0.1:0' },
    HTTPS: { Enabled: false },
    UpstreamServer: { URL: 'http://127.0.0.1:9' },
    Workers: 1,
  });
});
after(() => rm(dir, { recursive: true, force: true }));

const nodeArgs = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);

test('a single process started without a size serves with --max-semi-space-size=2, in the same pid', async () => {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const gw = await startGateway({ configFile, waitFor: ['http'], env });
  try {
    const args = nodeArgs(gw.process.pid!);
    // Node 22.12-22.14 has no process.execve: the process serves as started.
    assert.equal(args.includes('--max-semi-space-size=2'), canExec, args.join(' '));
    assert.equal(args.filter((a) => a.endsWith('gateway.js')).length, 1);
    assert.deepEqual(args.slice(-2), ['--config', configFile]);
  } finally {
    await gw.stop();
  }
});

test("the operator's size (NODE_OPTIONS) is kept, and the process is not started again", async () => {
  const gw = await startGateway({ configFile, waitFor: ['http'], env: { ...process.env, NODE_OPTIONS: '--max-semi-space-size=8' } });
  try {
    assert.ok(!nodeArgs(gw.process.pid!).some((a) => a.includes('semi-space')));
  } finally {
    await gw.stop();
  }
});
