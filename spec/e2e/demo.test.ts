import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { client5Unavailable } from '../support/client5-fleet';
import { REPO_ROOT } from '../support/gateway-process';
import { menderConnectUnavailable } from '../support/mender-connect-process';

// `make demo` as a newcomer runs it (dist/fixtures/demo/run-demo.js), made non-interactive with
// DEMO_EXIT_AFTER_SECONDS or stopped with SIGINT as Ctrl-C would. Each run gets its own TMPDIR,
// so "nothing left behind" is checkable: no process mentions it and it ends up empty.

const DEMO = join(REPO_ROOT, 'dist', 'fixtures', 'demo', 'run-demo.js');

interface DemoRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
  tmp: string;
}

function runDemo(env: Record<string, string>, interruptWhen?: RegExp): Promise<DemoRun> {
  const tmp = mkdtempSync(join(tmpdir(), 'demo-test-'));
  const child = spawn(process.execPath, [DEMO], {
    cwd: REPO_ROOT,
    env: { ...process.env, TMPDIR: tmp, DEMO_DEVICES: '5', DEMO_TIMEOUT_SECONDS: '90', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (chunk: Buffer): void => {
    output += chunk.toString();
    if (interruptWhen?.test(output)) {
      interruptWhen = undefined;
      child.kill('SIGINT');
    }
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const killer = setTimeout(() => child.kill('SIGKILL'), 140_000);
  return new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, output, tmp });
    }),
  );
}

/** Processes whose command line or environment-free argv mentions the path. */
function processesMentioning(path: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmdline.includes(path)) found.push(`${pid}: ${cmdline}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

function assertCleanExit(run: DemoRun): void {
  try {
    assert.equal(run.code, 0, run.output.slice(-4000));
    assert.match(run.output, /stopped; no process or temp dir left behind/);
    assert.doesNotMatch(run.output, /gateway exited with|cleanup step failed/);
    assert.deepEqual(processesMentioning(run.tmp), []);
    assert.deepEqual(readdirSync(run.tmp), [], 'the demo left files in its TMPDIR');
  } finally {
    rmSync(run.tmp, { recursive: true, force: true });
  }
}

test('make demo with real clients: a mixed 3.4/5.1 fleet all updated, a remote shell command answered, exits 0, leaves nothing behind', {
  timeout: 150_000,
}, async () => {
  const run = await runDemo({ DEMO_DEVICE_KIND: 'real', DEMO_EXIT_AFTER_SECONDS: '1' });
  assert.match(run.output, /5 real mender 3\.4 clients/);
  // Client 5.1 and mender-connect join when found (.ci/run requires both).
  const mixed = client5Unavailable() === null;
  const total = mixed ? 8 : 5;
  if (mixed) assert.match(run.output, /3 Mender client 5\.1 devices/);
  assert.match(run.output, new RegExp(`devices updated ${total}/${total}`));
  assert.match(run.output, new RegExp(`All ${total} devices updated`));
  if (mixed && menderConnectUnavailable() === null) {
    assert.match(run.output, /Remote shell {4}mender-connect on 02:00:00:df:00:01 through the gateway: \$ echo/);
    assert.match(run.output, /\n {16}Linux \S+ on \S+, shell pid \d+\n/);
  }
  assertCleanExit(run);
});

test('make demo stops cleanly on Ctrl-C in the middle of a deployment', { timeout: 150_000 }, async () => {
  const run = await runDemo(
    { DEMO_DEVICE_KIND: 'real', DEMO_CLIENT5_DEVICES: '0', DEMO_THROTTLE_KIB_PER_SECOND: '256' },
    /devices updated 0\/5/,
  );
  assert.match(run.output, /Ctrl-C: stopping everything/);
  assertCleanExit(run);
});

test('make demo falls back to scripted devices', { timeout: 150_000 }, async () => {
  const run = await runDemo({ DEMO_DEVICE_KIND: 'scripted', DEMO_EXIT_AFTER_SECONDS: '1' });
  assert.match(run.output, /5 scripted devices/);
  assert.match(run.output, /All 5 devices updated/);
  assertCleanExit(run);
});
