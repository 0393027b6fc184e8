import { randomBytes } from 'node:crypto';
import { copyFileSync, linkSync, mkdtempSync, promises as fsp, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

// Artifact bodies for the benchmarks. Two of them want a 1 GiB file; writing one takes seconds,
// so each size is written once per run into a shared temp dir (removed at exit) and hard-linked
// where a benchmark asks for it (its own temp dir, removed with it). The body is a 4 MiB random
// block repeated, each copy stamped with its offset: nothing on the path compresses or
// deduplicates, and it writes about twice as fast as fresh random bytes.

const MiB = 1024 * 1024;
const BLOCK = 4 * MiB;
const written = new Map<number, Promise<string>>();
let sharedDir: string | undefined;

async function write(file: string, size: number): Promise<void> {
  const block = randomBytes(BLOCK);
  const fh = await fsp.open(file, 'w');
  try {
    for (let off = 0; off < size; off += BLOCK) {
      block.writeUInt32BE(off / BLOCK, 0);
      await fh.write(block, 0, Math.min(BLOCK, size - off));
    }
  } finally {
    await fh.close();
  }
}

/** Make `file` a `size`-byte artifact body (a hard link to this run's copy of that size). */
export async function makeArtifactFile(file: string, size: number): Promise<void> {
  if (!sharedDir) {
    const dir = mkdtempSync(path.join(tmpdir(), 'bench-files-'));
    sharedDir = dir;
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  let copy = written.get(size);
  if (!copy) {
    const target = path.join(sharedDir, `${size}.bin`);
    copy = write(target, size).then(() => target);
    written.set(size, copy);
  }
  const source = await copy;
  try {
    linkSync(source, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    copyFileSync(source, file);
  }
}
