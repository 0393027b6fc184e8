import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { LOG_DIR } from './fault-harness';

// Each fault test appends one JSON line of figures (trials, faults survived, inputs tried, bytes
// lost); `make faults` prints the table for the README from them (spec/faults/print-figures.ts).

export interface Figures {
  trials: number;
  faults: number;
  inputs: number;
  bytesLost: number;
  note?: string;
}

export const FIGURES_FILE = join(LOG_DIR, 'figures.jsonl');

export function recordFigures(what: string, f: Figures): void {
  mkdirSync(LOG_DIR, { recursive: true });
  appendFileSync(FIGURES_FILE, JSON.stringify({ what, ...f }) + '\n');
}
