import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

// A single-file update-module artifact, made at run time with mender-artifact (nothing binary
// is committed). The payload is deterministic pseudo-random bytes from a seed, so a test can
// compare what a device installed with what was built.

const run = promisify(execFile);

/**
 * The single-file module runs with cwd `<DATA>/modules/v3/payloads/0000/tree`, so this relative
 * dest_dir lands in `<DATA>/dest`: one artifact serves many client instances, each installing
 * into its own data dir (real-client.md §1).
 */
export const PER_INSTANCE_DEST_DIR = '../../../../../dest';

export interface ArtifactOptions {
  dir: string; // where to build; the artifact and its inputs go here
  name: string; // artifact_name, must match the deployment
  payloadBytes: number; // ≥ 4096 so the artifact clears the client's minimum image size
  seed?: string;
  deviceType?: string; // default 'test-device'
  payloadName?: string; // file name installed under dest_dir, default 'payload.bin'
}

export interface Artifact {
  path: string;
  name: string;
  deviceType: string;
  size: number; // bytes of the .mender file
  payloadName: string;
  payloadBytes: number;
  payloadSha256: string;
}

/** Deterministic bytes: SHA-256 in counter mode over the seed, written in 64 KiB blocks. */
export async function writeSeededBytes(path: string, bytes: number, seed: string): Promise<string> {
  const out = createWriteStream(path);
  const digest = createHash('sha256');
  let counter = 0;
  let left = bytes;
  while (left > 0) {
    const block = Buffer.alloc(Math.min(left, 65536));
    for (let off = 0; off < block.length; off += 32) {
      createHash('sha256').update(`${seed}:${counter++}`).digest().copy(block, off);
    }
    digest.update(block);
    left -= block.length;
    if (!out.write(block)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  return digest.digest('hex');
}

export async function makeArtifact(opts: ArtifactOptions): Promise<Artifact> {
  const deviceType = opts.deviceType ?? 'test-device';
  const payloadName = opts.payloadName ?? 'payload.bin';
  const work = join(opts.dir, `${opts.name}.src`);
  mkdirSync(work, { recursive: true });
  const payloadSha256 = await writeSeededBytes(join(work, payloadName), opts.payloadBytes, opts.seed ?? opts.name);
  writeFileSync(join(work, 'dest_dir'), `${PER_INSTANCE_DEST_DIR}\n`);
  writeFileSync(join(work, 'filename'), `${payloadName}\n`);
  writeFileSync(join(work, 'permissions'), '644\n');
  const path = join(opts.dir, `${opts.name}.mender`);
  await run(
    'mender-artifact',
    [
      'write',
      'module-image',
      '-T',
      'single-file',
      '-t',
      deviceType,
      '-n',
      opts.name,
      '-o',
      path,
      '-f',
      'dest_dir',
      '-f',
      'filename',
      '-f',
      'permissions',
      '-f',
      payloadName,
      '--compression',
      'none',
    ],
    { cwd: work },
  );
  const { size } = statSync(path);
  return { path, name: opts.name, deviceType, size, payloadName, payloadBytes: opts.payloadBytes, payloadSha256 };
}
