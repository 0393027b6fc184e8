import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { installGlobalFile, MARK, restoreGlobalFile } from '../support/client-globals';

// The real-client harness replaces two files at fixed system paths. On a developer's machine
// whatever was there must come back, also after a run that died holding them.

const root = mkdtempSync(join(tmpdir(), 'client-globals-'));
after(() => rmSync(root, { recursive: true, force: true }));

const OURS = `#!/bin/sh\n${MARK}\necho mac=x\n`;
const THEIRS = '#!/bin/sh\necho "mac=$(cat /sys/class/net/eth0/address)"\n';

type Step = 'install' | 'restore';
interface Case {
  name: string;
  before?: { text: string; mode: number };
  backupBefore?: string;
  steps: Step[];
  after: { text: string; mode?: number } | null;
  backupAfter?: string;
}

const cases: Case[] = [
  { name: 'nothing there: ours while installed', steps: ['install'], after: { text: OURS, mode: 0o755 } },
  { name: 'nothing there: nothing after', steps: ['install', 'restore'], after: null },
  {
    name: "someone's file: kept aside while ours is installed",
    before: { text: THEIRS, mode: 0o700 },
    steps: ['install'],
    after: { text: OURS, mode: 0o755 },
    backupAfter: THEIRS,
  },
  {
    name: "someone's file: back, with its mode, after",
    before: { text: THEIRS, mode: 0o700 },
    steps: ['install', 'restore'],
    after: { text: THEIRS, mode: 0o700 },
  },
  {
    name: 'a crashed run left ours and the backup: the next install keeps their file, not ours, as the backup',
    before: { text: OURS, mode: 0o755 },
    backupBefore: THEIRS,
    steps: ['install', 'restore'],
    after: { text: THEIRS },
  },
  {
    name: 'a crashed run left only ours: removed after the next run',
    before: { text: OURS, mode: 0o755 },
    steps: ['install', 'restore'],
    after: null,
  },
  {
    name: 'restore never deletes a file that is not ours',
    before: { text: THEIRS, mode: 0o644 },
    steps: ['restore'],
    after: { text: THEIRS, mode: 0o644 },
  },
];

for (const [i, c] of cases.entries()) {
  test(c.name, () => {
    const path = join(root, `case-${i}`, 'identity', 'mender-device-identity');
    if (c.before) {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, c.before.text, { mode: c.before.mode });
    }
    if (c.backupBefore) writeFileSync(`${path}.open-gateway-backup`, c.backupBefore);
    for (const step of c.steps) {
      if (step === 'install') installGlobalFile(path, OURS, 0o755);
      else restoreGlobalFile(path);
    }
    if (c.after === null) {
      assert.equal(existsSync(path), false);
    } else {
      assert.equal(readFileSync(path, 'utf8'), c.after.text);
      if (c.after.mode !== undefined) assert.equal(statSync(path).mode & 0o777, c.after.mode);
    }
    const backup = `${path}.open-gateway-backup`;
    if (c.backupAfter === undefined) assert.equal(existsSync(backup), false, 'backup left behind');
    else assert.equal(readFileSync(backup, 'utf8'), c.backupAfter);
  });
}
