import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { ENTRY_ID, isThisHost, parseTmpName, type CacheLayout, ensureLayout } from './cache-layout';
import { processAlive } from '../../server/process-liveness';
import { readPublished, type CacheIndex } from './cache-index';
import { removeEntry } from './evict-lru';
import { lockAbandoned } from './fill-lock';
import type { Logger } from '../../observe/log';

// Start-up step list (cacache verify style): whatever a kill -9 left behind is removed,
// and only entries whose sidecar and bytes agree are indexed. Another live process may
// share the cache path, so only files of dead processes (or old enough) are removed.

export interface RecoverContext {
  layout: CacheLayout;
  index: CacheIndex;
  log: Logger;
  /** proper-lockfile's stale time: an older lock is abandoned whoever holds it. */
  staleMs: number;
  now?: number;
}

/** A tmp file of another host is only removed past this age (we cannot probe its pid). */
const FOREIGN_TMP_AGE_MS = 60 * 60_000;
/** Bytes renamed into objects/ whose sidecar is not there yet: a publish in progress, or a kill between the two renames. */
const UNCOMMITTED_AGE_MS = 60_000;

type Step = (ctx: RecoverContext) => Promise<number>;

export const recoverySteps: [string, Step][] = [
  ['ensureDirectories', ensureDirectories],
  ['removeDeadTmpFiles', removeDeadTmpFiles],
  ['removeStaleLocks', removeStaleLocks],
  ['dropPartialEntries', dropPartialEntries],
  ['rebuildIndex', rebuildIndex],
];

export async function recoverCache(ctx: RecoverContext): Promise<void> {
  for (const [name, step] of recoverySteps) {
    const count = await step(ctx);
    if (count > 0) ctx.log.info('cache recovery', { step: name, count });
  }
}

async function ensureDirectories({ layout }: RecoverContext): Promise<number> {
  await ensureLayout(layout);
  return 0;
}

async function ageMs(file: string, now: number): Promise<number> {
  try {
    return now - (await fsp.stat(file)).mtimeMs;
  } catch {
    return 0;
  }
}

async function removeDeadTmpFiles({ layout, now = Date.now() }: RecoverContext): Promise<number> {
  let removed = 0;
  for (const name of await fsp.readdir(layout.tmp)) {
    const file = path.join(layout.tmp, name);
    const owner = parseTmpName(name);
    const dead = owner === null || (isThisHost(owner) ? !processAlive(owner) : (await ageMs(file, now)) > FOREIGN_TMP_AGE_MS);
    if (!dead) continue;
    await fsp.rm(file, { force: true, recursive: true });
    removed++;
  }
  return removed;
}

async function removeStaleLocks({ layout, staleMs, now = Date.now() }: RecoverContext): Promise<number> {
  let removed = 0;
  const names = await fsp.readdir(layout.locks);
  for (const name of names) {
    const m = /^([0-9a-f]{64})\.lock$/.exec(name);
    if (!m) continue;
    const lockDir = path.join(layout.locks, name);
    const ownerFile = path.join(layout.locks, `${m[1]}.owner`);
    if (!(await lockAbandoned(lockDir, ownerFile, staleMs, now))) continue;
    await fsp.rm(lockDir, { force: true, recursive: true });
    await fsp.rm(ownerFile, { force: true });
    removed++;
  }
  return removed;
}

async function dropPartialEntries({ layout, now = Date.now() }: RecoverContext): Promise<number> {
  let removed = 0;
  const names = new Set(await fsp.readdir(layout.objects));
  for (const name of names) {
    const sidecar = /^([0-9a-f]{64})\.json$/.exec(name);
    if (sidecar) {
      if (!(await readPublished(layout, sidecar[1]))) {
        await removeEntry(layout, sidecar[1]);
        removed++;
      }
      continue;
    }
    if (ENTRY_ID.test(name) && !names.has(`${name}.json`) && (await ageMs(path.join(layout.objects, name), now)) > UNCOMMITTED_AGE_MS) {
      await fsp.rm(path.join(layout.objects, name), { force: true });
      removed++;
    }
  }
  return removed;
}

async function rebuildIndex({ layout, index }: RecoverContext): Promise<number> {
  let count = 0;
  for (const name of await fsp.readdir(layout.objects)) {
    const m = /^([0-9a-f]{64})\.json$/.exec(name);
    if (!m) continue;
    const entry = await readPublished(layout, m[1]);
    if (entry) {
      index.set(entry);
      count++;
    }
  }
  return count;
}
