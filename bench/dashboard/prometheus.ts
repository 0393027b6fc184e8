import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../spec/support/listen';

// Debian's Prometheus (support/test-deps.sh installs it for promtool) run as a child process with
// a config, a TSDB and a port of its own: it scrapes one gateway's metrics listener under the job
// name the alert rules and the dashboard expect, and answers range queries afterwards.

export const PROMETHEUS = '/usr/bin/prometheus';
export const JOB = 'mender-gateway';

export interface RunningPrometheus {
  url: string;
  stop(): Promise<void>;
  output(): string;
}

/** One row of a range query's answer (resultType "matrix"). */
export interface RangeSeries {
  metric: Record<string, string>;
  values: [number, string][];
}

export async function startPrometheus(dir: string, target: string, scrapeSeconds: number): Promise<RunningPrometheus> {
  mkdirSync(join(dir, 'tsdb'), { recursive: true });
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    [
      'global:',
      `  scrape_interval: ${scrapeSeconds}s`,
      `  evaluation_interval: ${scrapeSeconds}s`,
      'scrape_configs:',
      `  - job_name: ${JOB}`,
      `    static_configs: [{ targets: ['${target}'] }]`,
      '',
    ].join('\n'),
  );
  const port = await freePort();
  const child = spawn(
    PROMETHEUS,
    [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const chunks: string[] = [];
  child.stdout.setEncoding('utf8').on('data', (t: string) => chunks.push(t));
  child.stderr.setEncoding('utf8').on('data', (t: string) => chunks.push(t));
  const killOnExit = (): void => void child.kill('SIGKILL');
  process.on('exit', killOnExit);
  const exited = new Promise<void>((done) => child.on('exit', () => done()));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`prometheus exited (${child.exitCode})\n${chunks.join('')}`);
    const ready = await fetch(`${url}/-/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    if (i > 150) throw new Error(`prometheus not ready after 15 s\n${chunks.join('')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    output: () => chunks.join(''),
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await exited;
      process.off('exit', killOnExit);
    },
  };
}

/** /api/v1/query_range: every series of `expr` between start and end (Unix seconds), one point per step. */
export async function queryRange(url: string, expr: string, start: number, end: number, stepSeconds: number): Promise<RangeSeries[]> {
  const params = new URLSearchParams({ query: expr, start: String(start), end: String(end), step: `${stepSeconds}s` });
  const res = await fetch(`${url}/api/v1/query_range`, { method: 'POST', body: params });
  const body = (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: RangeSeries[] } };
  if (body.status !== 'success' || !body.data) throw new Error(`prometheus refused ${expr}: ${body.error ?? res.status}`);
  return body.data.result;
}
