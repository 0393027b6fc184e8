// check-config: the artifact cache directory. A start finds an unwritable cache only on the
// first download; here a probe file is created and removed, and the free space is shown.

import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { dirname } from 'node:path';

export interface CachePathResult {
  path: string;
  /** One line for the summary (state and free space), or the problem. */
  line: string;
  ok: boolean;
}

const ERRORS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  ENOTDIR: 'a parent is not a directory',
  ENOENT: 'no such file or directory (a virtual file system?)',
  EDQUOT: 'disk quota exceeded',
};

const why = (err: unknown) => ERRORS[(err as NodeJS.ErrnoException).code ?? ''] ?? (err as Error).message;

async function freeSpace(path: string): Promise<string> {
  try {
    const s = await fsp.statfs(path);
    const bytes = s.bavail * s.bsize;
    return `${(bytes / 2 ** 30).toFixed(1)} GiB free`;
  } catch {
    return 'free space unknown';
  }
}

/** The nearest existing ancestor of `path` (the path itself when it exists), or an error. */
async function nearestExisting(path: string): Promise<{ at: string; isDir: boolean } | { error: unknown }> {
  let at = path;
  for (;;) {
    try {
      const st = await fsp.stat(at);
      return { at, isDir: st.isDirectory() };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' || dirname(at) === at) return { error: err };
      at = dirname(at);
    }
  }
}

export async function checkCachePath(path: string): Promise<CachePathResult> {
  const found = await nearestExisting(path);
  if ('error' in found) return { path, ok: false, line: `${path}: cannot be used: ${why(found.error)}` };
  if (found.at !== path) {
    // The gateway creates it (mkdir -p) at start: say whether that can succeed.
    if (!found.isDir) return { path, ok: false, line: `${path}: does not exist and cannot be created: ${found.at} is not a directory` };
    // A real mkdir, not access(W_OK): root passes that on /proc or a read-only mount.
    const probeDir = `${found.at}/.check-config-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await fsp.mkdir(probeDir);
    } catch (err) {
      return { path, ok: false, line: `${path}: does not exist and cannot be created in ${found.at}: ${why(err)}` };
    }
    await fsp.rmdir(probeDir).catch(() => undefined);
    return { path, ok: true, line: `${path}: does not exist yet; ${found.at} lets the gateway create it (${await freeSpace(found.at)})` };
  }
  if (!found.isDir) return { path, ok: false, line: `${path}: is not a directory` };
  // access(W_OK) says yes to root on a read-only mount: only a real write tells.
  const probe = `${path}/.check-config-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await (await fsp.open(probe, 'wx')).close();
  } catch (err) {
    return { path, ok: false, line: `${path}: not writable: ${why(err)}` };
  }
  await fsp.rm(probe, { force: true });
  return { path, ok: true, line: `${path}: writable (${await freeSpace(path)})` };
}
