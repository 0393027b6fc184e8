import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { hostFacts, type HostRoots } from '../../lib/server/host-memory';
import { planWorkers } from '../../lib/server/worker-count';

// The memory the auto worker rule counts: MemAvailable or the memory cgroup's limit,
// whichever is lower, read from a /proc and /sys laid out in a temp dir.

const MiB = 2 ** 20;
const GiB = 2 ** 30;

function host(files: Record<string, string>): HostRoots {
  const root = mkdtempSync(join(tmpdir(), 'host-memory-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  process.on('exit', () => rmSync(root, { recursive: true, force: true }));
  return { proc: join(root, 'proc'), sys: join(root, 'sys') };
}

const meminfo = (availableKiB: number) => `MemTotal:       24576000 kB\nMemFree:        20000000 kB\nMemAvailable:   ${availableKiB} kB\n`;
const auto = {
  Workers: 0,
  Metrics: { Enabled: false, Listen: ':9102', StatusPageAllowRemote: false },
  Features: { mTLS: { Enabled: false } },
};

const cases: Array<[string, Record<string, string>, { memory: number; available: number | null; cgroupLimit: number | null }, number]> = [
  [
    'no cgroup, 4 GiB available: two workers on two cores',
    { 'proc/meminfo': meminfo(4 * 1024 * 1024), 'proc/self/cgroup': '0::/\n' },
    { memory: 4 * GiB, available: 4 * GiB, cgroupLimit: null },
    2,
  ],
  [
    'cgroup v2 "max" everywhere: MemAvailable decides',
    {
      'proc/meminfo': meminfo(2 * 1024 * 1024),
      'proc/self/cgroup': '0::/system.slice/mender-gateway.service\n',
      'sys/fs/cgroup/system.slice/mender-gateway.service/memory.max': 'max\n',
      'sys/fs/cgroup/system.slice/memory.max': 'max\n',
    },
    { memory: 2 * GiB, available: 2 * GiB, cgroupLimit: null },
    2,
  ],
  [
    'cgroup v2 MemoryMax=512M on the service: one process',
    {
      'proc/meminfo': meminfo(20 * 1024 * 1024),
      'proc/self/cgroup': '0::/system.slice/mender-gateway.service\n',
      'sys/fs/cgroup/system.slice/mender-gateway.service/memory.max': `${512 * MiB}\n`,
    },
    { memory: 512 * MiB, available: 20 * GiB, cgroupLimit: 512 * MiB },
    1,
  ],
  [
    'cgroup v2 limit on the parent slice binds too',
    {
      'proc/meminfo': meminfo(20 * 1024 * 1024),
      'proc/self/cgroup': '0::/gw.slice/gw.service\n',
      'sys/fs/cgroup/gw.slice/gw.service/memory.max': 'max\n',
      'sys/fs/cgroup/gw.slice/memory.max': `${900 * MiB}\n`,
    },
    { memory: 900 * MiB, available: 20 * GiB, cgroupLimit: 900 * MiB },
    1,
  ],
  [
    'a container: cgroup v2 at the namespace root',
    { 'proc/meminfo': meminfo(20 * 1024 * 1024), 'proc/self/cgroup': '0::/\n', 'sys/fs/cgroup/memory.max': `${2 * GiB}\n` },
    { memory: 2 * GiB, available: 20 * GiB, cgroupLimit: 2 * GiB },
    2,
  ],
  [
    'cgroup v1 with a limit',
    {
      'proc/meminfo': meminfo(20 * 1024 * 1024),
      'proc/self/cgroup': '12:cpu,cpuacct:/docker/abc\n9:memory:/docker/abc\n',
      'sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes': `${768 * MiB}\n`,
    },
    { memory: 768 * MiB, available: 20 * GiB, cgroupLimit: 768 * MiB },
    1,
  ],
  [
    'cgroup v1 "unlimited" (page-aligned 2^63)',
    {
      'proc/meminfo': meminfo(3 * 1024 * 1024),
      'proc/self/cgroup': '9:memory:/\n',
      'sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712\n',
    },
    { memory: 3 * GiB, available: 3 * GiB, cgroupLimit: null },
    2,
  ],
  [
    'under 1 GiB available, no cgroup: one process',
    { 'proc/meminfo': meminfo(900 * 1024), 'proc/self/cgroup': '0::/\n' },
    { memory: 900 * MiB, available: 900 * MiB, cgroupLimit: null },
    1,
  ],
  ['no /proc at all: the total memory', {}, { memory: 24 * GiB, available: null, cgroupLimit: null }, 2],
];

for (const [name, files, want, workers] of cases) {
  test(name, () => {
    const facts = hostFacts(host(files), 2, 24 * GiB);
    assert.deepEqual({ memory: facts.memory, available: facts.available, cgroupLimit: facts.cgroupLimit }, want);
    const plan = planWorkers(auto, facts);
    assert.ok('count' in plan);
    assert.equal(plan.count, workers, plan.reason);
  });
}

test('the reason names the memory that decided', () => {
  const plan = planWorkers(
    auto,
    hostFacts(
      host({ 'proc/meminfo': meminfo(20 * 1024 * 1024), 'proc/self/cgroup': '0::/\n', 'sys/fs/cgroup/memory.max': `${512 * MiB}\n` }),
      2,
      24 * GiB,
    ),
  );
  assert.deepEqual(plan, { count: 1, reason: 'auto: 0.5 GiB available is under 1.0 GiB' });
});
