// The small doors: what the gateway writes where an operator's logs and terminals go, when the
// configuration it is given is wrong. A syntax error beside the password, or a credential of the
// wrong type, must be located and named, never quoted: journald keeps stderr for anyone in
// the adm group, and check-config's output is pasted into tickets.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createLogger } from '../../lib/observe/log';
import { REPO_ROOT, startGateway, writeGatewayConfig } from '../support/gateway-process';

const dir = mkdtempSync(join(tmpdir(), 'gw-hardening-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const PASSWORD = 's3cret-Passw0rd';
const S3_KEY_ID = 'AKIAQX7TESTKEYID2T9Z';
const S3_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ9SECRETKEY';
// Only what the test sets: no configuration variable leaks in from the developer's shell.
const ENV = { PATH: process.env.PATH ?? '/usr/bin:/bin' };

/** The file as an operator mistypes it: the password in single quotes, which JSON refuses. */
const BROKEN = `{
  "Workers": 1, "HTTP": { "Enabled": true, "Listen": "127.0.0.1:0" },
  "UpstreamServer": { "URL": "http://127.0.0.1:9" },
  "Features": { "mTLS": { "MenderUsername": "gateway@example.com", "MenderPassword": '${PASSWORD}' } }
}
`;
// Where the quote is: line 4, just after `"MenderPassword": `.
const WHERE = new RegExp(`line 4 column ${BROKEN.split('\n')[3].indexOf("'") + 1}: expected a value .*, found a single quote`);

/** No 6-character piece of any secret: Node's message quotes about 10 characters either side of an error. */
function assertNoPieceOf(output: string, secrets: string[]): void {
  for (const secret of secrets)
    for (let i = 0; i + 6 <= secret.length; i += 3)
      assert.ok(!output.includes(secret.slice(i, i + 6)), `"${secret.slice(i, i + 6)}" of a secret in:\n${output}`);
}

function gateway(args: string[]): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'gateway.js'), ...args], {
    cwd: REPO_ROOT,
    env: ENV,
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}

describe('a configuration syntax error is located, never quoted', () => {
  const conf = file('broken.conf', BROKEN);

  it('attack: a config syntax error does not echo the password (gateway start)', () => {
    const r = gateway(['--config', conf]);
    assert.equal(r.status, 2, r.output);
    assertNoPieceOf(r.output, [PASSWORD]);
    assert.match(r.output, new RegExp(`^mender-gateway: ${conf}: invalid JSON at `));
    assert.match(r.output, WHERE);
  });

  it('attack: a config syntax error does not echo the password (check-config, text and --json)', () => {
    for (const args of [
      ['check-config', '--config', conf],
      ['-t', '--json', '--config', conf],
    ]) {
      const r = gateway(args);
      assert.equal(r.status, 2, r.output);
      assertNoPieceOf(r.output, [PASSWORD]);
      assert.match(r.output, WHERE);
    }
  });

  it('attack: a config syntax error does not echo the password (SIGHUP reload of a running gateway)', async () => {
    const good = BROKEN.replace(`'${PASSWORD}'`, '"not-the-secret"');
    const configFile = file('reloaded.conf', good);
    const gw = await startGateway({ configFile, waitFor: ['http'], env: ENV, timeoutMs: 20_000 });
    try {
      const before = gw.output().length;
      writeFileSync(configFile, BROKEN);
      gw.process.kill('SIGHUP');
      const deadline = Date.now() + 10_000;
      while (!/reload: configuration invalid/.test(gw.output().slice(before))) {
        assert.ok(Date.now() < deadline, `no reload refusal in:\n${gw.output().slice(before)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const logged = gw.output().slice(before);
      assertNoPieceOf(logged, [PASSWORD]);
      assert.match(logged, WHERE);
    } finally {
      await gw.stop(5_000);
    }
  });

  it('attack: a mistyped S3 credential is not echoed (gateway start and check-config)', () => {
    // A list or an object where a string belongs: the schema refuses it and names the key.
    const conf = writeGatewayConfig(
      dir,
      {
        HTTP: { Enabled: true, Listen: '127.0.0.1:0' },
        UpstreamServer: { URL: 'http://127.0.0.1:9' },
        Features: { ArtifactsProxy: { ArtifactsCache: { S3: { AccessKeyID: [S3_KEY_ID], SecretAccessKey: { key: S3_SECRET } } } } },
      },
      's3-mistyped.conf',
    );
    for (const args of [
      ['--config', conf],
      ['check-config', '--config', conf],
    ]) {
      const r = gateway(args);
      assert.equal(r.status, 2, r.output);
      assertNoPieceOf(r.output, [S3_KEY_ID, S3_SECRET]);
      assert.match(r.output, /S3\.AccessKeyID: must be a string, got \[redacted\]/);
      assert.match(r.output, /S3\.SecretAccessKey: must be a string, got \[redacted\]/);
    }
  });
});

describe('presigned URLs and SigV4 credentials in log text', () => {
  it('a presigned query is masked without a scheme, in a field and in the message; so is a SigV4 Authorization header', () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'debug', sink: { write: (l: string) => lines.push(l) } });
    const signature = 'f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f';
    const credential = `${S3_KEY_ID}%2F20261207%2Fus-east-1%2Fs3%2Faws4_request`;
    const query = `X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=${credential}&X-Amz-Date=20261207T000000Z&X-Amz-Signature=${signature}`;
    log.warn(`bucket answered for /cache/v1/x?${query}`, { target: `/cache/v1/x?${query}`, cause: `GET cache/v1/x?${query} failed` });
    log.info('bucket request', {
      header: `AWS4-HMAC-SHA256 Credential=${S3_KEY_ID}/20261207/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=${signature}`,
      accessKeyId: S3_KEY_ID,
      s3_access_key: S3_KEY_ID,
    });
    const text = lines.join('');
    assertNoPieceOf(text, [S3_KEY_ID, signature]);
    assert.match(text, /X-Amz-Signature=\[redacted\]/);
    assert.match(text, /X-Amz-Date=20261207T000000Z/, 'what is not a credential stays readable');
  });
});
