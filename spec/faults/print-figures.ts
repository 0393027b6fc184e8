import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LOG_DIR, SECRET_SHAPES } from './fault-harness';
import { FIGURES_FILE } from './figures';

// `make faults` ends here: the figures of the run as the README's table, and a last search of
// every gateway log the suite captured (debug level) for anything shaped like a secret.

interface Row {
  what: string;
  trials: number;
  faults: number;
  inputs: number;
  bytesLost: number;
  note?: string;
}

const rows: Row[] = existsSync(FIGURES_FILE)
  ? readFileSync(FIGURES_FILE, 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Row)
  : [];
console.log('| fault or input | trials | faults survived | inputs tried | bytes lost | notes |');
console.log('|---|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.what} | ${r.trials} | ${r.faults} | ${r.inputs} | ${r.bytesLost} | ${r.note ?? ''} |`);
const sum = (k: 'trials' | 'faults' | 'inputs' | 'bytesLost') => rows.reduce((a, r) => a + r[k], 0);
console.log(`| **total** | ${sum('trials')} | ${sum('faults')} | ${sum('inputs')} | ${sum('bytesLost')} | |`);

const logs = existsSync(LOG_DIR) ? readdirSync(LOG_DIR).filter((f) => f.endsWith('.log')) : [];
let bytes = 0;
const hits: string[] = [];
for (const f of logs) {
  const text = readFileSync(join(LOG_DIR, f), 'utf8');
  bytes += text.length;
  for (const shape of SECRET_SHAPES) if (shape.test(text)) hits.push(`${f}: ${shape}`);
}
console.log(
  `\n${logs.length} gateway logs (${(bytes / 1024).toFixed(0)} KiB at debug level) searched for JWTs, presigned queries, link signatures, credentials: ${hits.length ? hits.join('; ') : 'none found'}`,
);
if (hits.length || sum('bytesLost') > 0) process.exit(1);
