import { readFileSync } from 'node:fs';

// `make test` runs node's test runner twice (unit+integration, then e2e one file at a time);
// this adds up their TAP closing counts into one plain line: "tests: N passed, N failed, N skipped".
// The attacker suite (spec/security) names each attack's test "attack: …"; a second line counts
// them: "security: N attacks tried, N got through" (a failed attack test is one that got through).

let passed = 0;
let failed = 0;
let skipped = 0;
let attacks = 0;
const through: string[] = [];
for (const file of process.argv.slice(2)) {
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const attack = /^\s*(not )?ok \d+ - (attack: .*?)(?: # .*)?$/.exec(line);
    if (attack) {
      attacks++;
      if (attack[1]) through.push(attack[2]!);
    }
    const m = /^# (pass|fail|skipped|cancelled) (\d+)$/.exec(line);
    if (!m) continue;
    const n = Number(m[2]);
    if (m[1] === 'pass') passed += n;
    else if (m[1] === 'skipped') skipped += n;
    else failed += n;
  }
}
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
if (attacks > 0) {
  console.log(`security: ${attacks} attacks tried, ${through.length} got through`);
  for (const name of through) console.log(`  got through: ${name}`);
}
process.exit(failed > 0 || passed === 0 ? 1 : 0);
