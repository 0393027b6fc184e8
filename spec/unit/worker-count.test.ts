import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MEMORY_PER_WORKER, planWorkers, type HostFacts, type WorkerPlan } from '../../lib/server/worker-count';

// Workers: what 0 (auto) and explicit counts become on a given host.

const GiB = 1024 * 1024 * 1024;
// The report journal is on in some rows: it no longer bears on the count (the primary is its writer).
const conf = (Workers: number, journal = false, metrics = false, mtls = false) => ({
  Workers,
  Metrics: { Enabled: metrics, Listen: ':9102', StatusPageAllowRemote: false },
  Features: { ReportJournal: { Enabled: journal }, mTLS: { Enabled: mtls } },
});

const cases: [string, ReturnType<typeof conf>, HostFacts, number][] = [
  ['auto, 2 cores, 24 GiB: one per core', conf(0), { cores: 2, memory: 24 * GiB }, 2],
  ['auto, 8 cores, 24 GiB', conf(0), { cores: 8, memory: 24 * GiB }, 8],
  ['auto, one core', conf(0), { cores: 1, memory: 24 * GiB }, 1],
  ['auto, 4 cores, 768 MiB available: one process', conf(0), { cores: 4, memory: 3 * MEMORY_PER_WORKER }, 1],
  ['auto, 2 cores, just under 1 GiB available: one process', conf(0), { cores: 2, memory: GiB - 1 }, 1],
  ['auto, 2 cores, 1 GiB available: two workers', conf(0), { cores: 2, memory: GiB }, 2],
  ['auto, 16 cores, 1.5 GiB: memory caps it at 4', conf(0), { cores: 16, memory: 1.5 * GiB }, 4],
  ['auto with the report journal: one per core', conf(0, true), { cores: 8, memory: 24 * GiB }, 8],
  ['auto with the report journal, one core: one process', conf(0, true), { cores: 1, memory: 24 * GiB }, 1],
  ['auto with metrics: one process', conf(0, false, true), { cores: 8, memory: 24 * GiB }, 1],
  ['auto with mTLS: one process', conf(0, false, false, true), { cores: 8, memory: 24 * GiB }, 1],
  ['explicit 2 with mTLS is taken', conf(2, false, false, true), { cores: 8, memory: 24 * GiB }, 2],
  ['explicit 1 on a big box', conf(1), { cores: 8, memory: 24 * GiB }, 1],
  ['explicit 3 on one core is taken as is', conf(3), { cores: 1, memory: GiB }, 3],
  ['explicit 2 with metrics is taken', conf(2, false, true), { cores: 2, memory: GiB }, 2],
  ['explicit 2 with the journal is taken', conf(2, true), { cores: 2, memory: GiB }, 2],
  ['explicit 4 with the journal and metrics is taken', conf(4, true, true), { cores: 2, memory: GiB }, 4],
];

for (const [name, config, host, want] of cases) {
  test(name, () => {
    const plan: WorkerPlan = planWorkers(config, host);
    assert.ok(!('error' in plan), JSON.stringify(plan));
    assert.equal(plan.count, want);
  });
}
