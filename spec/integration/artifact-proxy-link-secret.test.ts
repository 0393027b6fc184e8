import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveLinkSecret, SECRET_FILE } from '../../lib/artifacts/link-secret';
import { createLogger } from '../../lib/observe/log';

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'link-secret-'));
  dirs.push(dir);
  return dir;
}

function capture() {
  const lines: string[] = [];
  return { lines, log: createLogger({ level: 'debug', sink: { write: (l: string) => lines.push(l) } }) };
}

test('no secret configured: one is generated, kept 0600 in the cache path, reused after a restart, never logged', async () => {
  const cache = join(await tempDir(), 'not-yet-there');
  const first = capture();
  const secret = await resolveLinkSecret('', cache, first.log);
  assert.equal(secret.length, 32);
  const file = join(cache, SECRET_FILE);
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.equal(Buffer.from((await readFile(file, 'utf8')).trim(), 'base64').toString('hex'), secret.toString('hex'));
  assert.equal(first.lines.length, 1);
  assert.match(first.lines[0]!, /generated one and stored it in .*link-signature-secret/);

  const second = capture();
  const again = await resolveLinkSecret('', cache, second.log);
  assert.equal(again.toString('hex'), secret.toString('hex'));
  assert.match(second.lines[0]!, /generated secret kept in/);
  for (const line of [...first.lines, ...second.lines]) {
    assert.ok(!line.includes(secret.toString('base64')) && !line.includes(secret.toString('base64url')));
  }
});

test('a configured secret is used as given and nothing is written', async () => {
  const cache = await tempDir();
  const { log, lines } = capture();
  const secret = await resolveLinkSecret('KDbQ+Z9asYtPdRQoakM5lGs6xgkWyNx4', cache, log);
  assert.equal(secret.toString('base64'), 'KDbQ+Z9asYtPdRQoakM5lGs6xgkWyNx4');
  await assert.rejects(stat(join(cache, SECRET_FILE)), /ENOENT/);
  assert.equal(lines.length, 0);
});

test('a configured secret that is not base64 or too short is a startup error naming the key', async () => {
  const cache = await tempDir();
  const { log } = capture();
  await assert.rejects(resolveLinkSecret('not base64!', cache, log), /SignatureSecret: not base64/);
  await assert.rejects(resolveLinkSecret('c2hvcnQ=', cache, log), /SignatureSecret: must decode to at least 16 bytes \(has 5\)/);
});

test('an unwritable cache path is a readable startup error', async () => {
  const { log } = capture();
  const aFile = join(await tempDir(), 'plain-file');
  await writeFile(aFile, 'x');
  await assert.rejects(
    resolveLinkSecret('', join(aFile, 'cache'), log),
    /link signature secret .*plain-file\/cache\/link-signature-secret: ENOTDIR/,
  );
});
