import { readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs';

// A file the gateway reads at start and again whenever it changes (the serial blocklist, the
// CA's CRL). fs.watchFile polls stat: it survives the file being replaced by rename (editors,
// config management, Kubernetes ConfigMap symlink swaps), which an fs.watch on the inode does not.

export type Loaded<T> = { ok: true; value: T } | { ok: false; error: string };

const POLL_MS = 500;

export interface WatchedFile {
  /** Load it again now (something it depends on changed), as if the file had changed. */
  reload(): void;
  close(): void;
}

/**
 * `load(path)` at start (a failure throws `<what>: <path>: <error>`), then on every change:
 * `onLoad` gets each good value, `onBad` the error of a broken or vanished file (the caller
 * keeps its last good value).
 */
export function watchLoadedFile<T>(
  what: string,
  path: string,
  load: (path: string) => Loaded<T>,
  on: { onLoad(value: T, initial: boolean): void; onBad(error: string): void },
  pollMs = POLL_MS,
): WatchedFile {
  const first = load(path);
  if (!first.ok) throw new Error(`${what}: ${path}: ${first.error}`);
  on.onLoad(first.value, true);
  const reload = (): void => {
    const next = load(path);
    if (next.ok) on.onLoad(next.value, false);
    else on.onBad(next.error);
  };
  const onChange = (curr: Stats, prev: Stats): void => {
    if (curr.mtimeMs === prev.mtimeMs && curr.size === prev.size && curr.ino === prev.ino) return;
    reload();
  };
  watchFile(path, { interval: pollMs, persistent: false }, onChange);
  return { reload, close: () => unwatchFile(path, onChange) };
}

/** The file's bytes, or why not ('no such file' when missing). */
export function readFileBytes(path: string): Loaded<Buffer> {
  try {
    return { ok: true, value: readFileSync(path) };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { ok: false, error: code === 'ENOENT' ? 'no such file' : (err as Error).message };
  }
}
