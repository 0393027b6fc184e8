import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { enableProcessMetrics, metricsRegistry } from '../../lib/observe/metrics';

// support/monitoring: the alert rules pass `promtool check rules` and their own `promtool test
// rules` cases; the Grafana dashboard is valid, its every query parses (promtool again) and names
// only metrics the gateway exports (read from its registry, process metrics on).

const DIR = join(__dirname, '..', '..', '..', 'support', 'monitoring');
const RULES = join(DIR, 'mender-gateway.rules.yml');
const DASHBOARD = join(DIR, 'grafana-dashboard.json');

/** Names Prometheus adds itself. */
const NOT_FROM_THE_REGISTRY = new Set(['up']);

function promtool(args: string[], cwd = DIR): string {
  try {
    return execFileSync('promtool', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') assert.fail('promtool is missing: apt-get install prometheus (support/test-deps.sh does it for make test)');
    assert.fail(`promtool ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

test('promtool check rules: the alert rules are valid', () => {
  const out = promtool(['check', 'rules', RULES]);
  assert.match(out, /SUCCESS: \d+ rules found/);
});

test('promtool test rules: the gateway-down and descriptors alerts fire, a short outage does not', () => {
  const out = promtool(['test', 'rules', 'mender-gateway.rules.test.yml']);
  assert.match(out, /SUCCESS/);
});

test('every alert has a for duration, a severity and a summary and description', () => {
  const text = readFileSync(RULES, 'utf8');
  const alerts = text.split(/\n(?= {6}- alert: )/).slice(1);
  assert.ok(alerts.length >= 6, `${alerts.length} alerts`);
  for (const a of alerts) {
    const name = /- alert: (\w+)/.exec(a)?.[1];
    assert.match(a, /\n {8}for: \d+[mh]\n/, `${name}: for`);
    assert.match(a, /\n {10}severity: (warning|critical)\n/, `${name}: severity`);
    assert.match(a, /\n {10}summary: /, `${name}: summary`);
    assert.match(a, /\n {10}description: /, `${name}: description`);
  }
});

interface Target {
  expr: string;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Target[];
}
interface Dashboard {
  __inputs: { name: string; pluginId: string }[];
  schemaVersion: number;
  panels: Panel[];
  templating: { list: { name: string; query: unknown }[] };
}

const dashboard = (): Dashboard => JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;

/** The dashboard's queries as Prometheus would get them: Grafana's variables filled in. */
function queries(d: Dashboard): { where: string; expr: string }[] {
  const fill = (expr: string) =>
    expr
      .replaceAll('$__rate_interval', '5m')
      .replaceAll('$__range', '24h')
      .replaceAll('$job', 'mender-gateway')
      .replaceAll('$instance', '.*');
  const out = d.panels.flatMap((p) => (p.targets ?? []).map((t, i) => ({ where: `panel "${p.title}" query ${i}`, expr: fill(t.expr) })));
  for (const v of d.templating.list) {
    const q = typeof v.query === 'string' ? v.query : (v.query as { query?: string } | undefined)?.query;
    const m = q && /^label_values\((.*),\s*\w+\)$/.exec(q);
    if (m) out.push({ where: `variable ${v.name}`, expr: fill(m[1]!) });
  }
  return out;
}

/** Metric names in a PromQL expression: identifiers that are not functions, keywords or labels. */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const keywords = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
  const names: string[] = [];
  for (const m of bare.matchAll(/(?<![\w:.])([a-zA-Z_:][\w:]*)(\s*\()?/g)) {
    if (m[2] === undefined && !keywords.has(m[1]!)) names.push(m[1]!);
  }
  return names;
}

test('metricNames finds the metrics and nothing else', () => {
  assert.deepEqual(
    metricNames('1 - sum by (route, code) (rate(a_total{job="x", le=~"1e3"}[5m])) / on(instance) group_left b_bytes offset 1h > bool 1e3'),
    ['a_total', 'b_bytes'],
  );
  assert.deepEqual(metricNames('(c_seconds - time()) / 86400'), ['c_seconds']);
});

test('the Grafana dashboard: valid JSON, a DS_PROMETHEUS input, every query on it, the panels asked for', () => {
  const d = dashboard();
  assert.ok(d.schemaVersion >= 36, `schemaVersion ${d.schemaVersion}`);
  assert.deepEqual(
    d.__inputs.map((i) => [i.name, i.pluginId]),
    [['DS_PROMETHEUS', 'prometheus']],
  );
  const ids = d.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  for (const p of d.panels) {
    assert.ok(p.gridPos.x + p.gridPos.w <= 24, `${p.title} fits the 24 columns`);
    if (p.type === 'row') continue;
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's input placeholder, not a template
    assert.equal(p.datasource?.uid, '${DS_PROMETHEUS}', `${p.title}: datasource`);
    assert.ok((p.targets ?? []).length > 0, `${p.title}: a query`);
  }
  const used = new Set(queries(d).flatMap((q) => metricNames(q.expr)));
  for (const name of [
    'mender_gateway_devices_active',
    'mender_gateway_http_requests_total',
    'mender_gateway_artifact_bytes_fetched_total',
    'mender_gateway_artifact_bytes_served_total',
    'mender_gateway_journal_queued',
    'mender_gateway_cache_size_bytes',
    'mender_gateway_cache_entries',
    'mender_gateway_cache_evictions_total',
    'process_resident_memory_bytes',
    'nodejs_heap_size_used_bytes',
    'process_open_fds',
    'process_max_fds',
    'mender_gateway_certificate_expiry_timestamp_seconds',
  ]) {
    assert.ok(used.has(name), `a panel shows ${name}`);
  }
});

test('every dashboard query names only metrics the gateway exports', async () => {
  enableProcessMetrics();
  const text = await metricsRegistry.metrics();
  const exported = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\w+) (\w+)$/gm)) {
    exported.add(m[1]!);
    if (m[2] === 'histogram' || m[2] === 'summary') for (const s of ['_bucket', '_sum', '_count']) exported.add(m[1]! + s);
  }
  assert.ok(exported.has('process_open_fds') && exported.has('mender_gateway_upstream_up'), 'the registry read');
  for (const q of queries(dashboard())) {
    const names = metricNames(q.expr);
    assert.ok(names.length > 0, `${q.where}: names a metric`);
    for (const name of names) assert.ok(exported.has(name) || NOT_FROM_THE_REGISTRY.has(name), `${q.where}: ${name} is not exported`);
  }
  // The rules too.
  for (const m of readFileSync(RULES, 'utf8').matchAll(/^ {8}expr: (.*)$/gm)) {
    for (const name of metricNames(m[1]!)) assert.ok(exported.has(name) || NOT_FROM_THE_REGISTRY.has(name), `rule expr ${m[1]}: ${name}`);
  }
});

test('every dashboard query parses (promtool, as recording rules)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dashboard-queries-'));
  try {
    const rules = queries(dashboard()).map((q, i) => ({ record: `dashboard:query_${i}`, expr: q.expr }));
    // JSON is YAML: promtool reads it as a rule file.
    writeFileSync(join(dir, 'queries.yml'), JSON.stringify({ groups: [{ name: 'dashboard', rules }] }));
    assert.match(promtool(['check', 'rules', 'queries.yml'], dir), new RegExp(`SUCCESS: ${rules.length} rules found`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
