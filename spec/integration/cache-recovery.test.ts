import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { cacheLayout, ensureLayout, parseTmpName, tmpPath } from '../../lib/cache/store/cache-layout';
import { entryId } from '../../lib/cache/store/cache-key';
import { CacheIndex } from '../../lib/cache/store/cache-index';
import { recoverCache } from '../../lib/cache/store/recover-cache';
import { startTimeOf } from '../../lib/server/process-liveness';
import { captureLog } from '../support/capture-log';

// Start-up recovery keeps the tmp files of live processes (another gateway sharing the cache
// path, a sibling worker) and removes those of dead ones. CI once kept a killed worker's files:
// its pid had been handed to another process (pids wrap at 32768 here), so the pid looked alive.

test('recovery removes tmp files of dead owners, also when their pid now names another process, and keeps live ones', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cache-recovery-'));
  try {
    const layout = cacheLayout(dir);
    await ensureLayout(layout);
    const id = entryId('127.0.0.1:9/artifact');
    const host = parseTmpName(tmpPath(layout, id).slice(layout.tmp.length + 1))!.host;
    const self = startTimeOf('self')!;
    const name = (owner: string) => `${id}.${host}.${owner}.aaaaaaaaaaaa`;
    const files = {
      mine: tmpPath(layout, id).slice(layout.tmp.length + 1), // this process, as it names them
      reused: name(`${process.pid}-${self + 7}`), // our pid, another start time: a dead process's
      oldFormat: name(`${process.pid}`), // no start time recorded: the live pid keeps it
      gone: name(`${2 ** 22 + 1}-1`), // beyond any pid_max
    };
    for (const f of Object.values(files)) writeFileSync(join(layout.tmp, f), 'partial');
    const captured = captureLog('info');
    await recoverCache({ layout, index: new CacheIndex(layout), log: captured.log, staleMs: 10_000 });
    assert.deepEqual(readdirSync(layout.tmp).sort(), [files.mine, files.oldFormat].sort());
    assert.match(captured.text(), /cache recovery.*step=removeDeadTmpFiles count=2/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
