import { execFile } from 'node:child_process';
import * as path from 'node:path';

// Load generators run as processes of their own (so their CPU is not the orchestrator's and
// a slow event loop on one side cannot pace the other). Each prints one JSON line.

export function runJsonChild<T>(script: string, input: unknown, timeoutMs = 15 * 60_000): Promise<T> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [path.join(__dirname, script), JSON.stringify(input)],
      { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`${script}: ${err.message}\n${stderr}`));
        try {
          resolve(JSON.parse(stdout.trim().split('\n').pop() ?? '') as T);
        } catch {
          reject(new Error(`${script}: no JSON result\n${stdout}\n${stderr}`));
        }
      },
    );
  });
}
