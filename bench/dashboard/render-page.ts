import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../spec/support/gateway-process';
import { queryRange, type RangeSeries } from './prometheus';

// The dashboard file read as Grafana reads it (panels on a 24-column grid, each with its PromQL
// targets, legend formats, units, overrides, value mappings and thresholds), its queries run
// against Prometheus, and a page drawn from the answers: uPlot for time series, the last value for
// stat panels (with the panel's sparkline). Not Grafana: its layout rules and colours copied by hand.

export const DASHBOARD = join(REPO_ROOT, 'support', 'monitoring', 'grafana-dashboard.json');
const UPLOT = join(REPO_ROOT, 'node_modules', 'uplot', 'dist');
// The page's script and style, read from the source tree (tsc copies no .js or .css).
const PAGE = join(REPO_ROOT, 'bench', 'dashboard', 'page');

interface Target {
  refId: string;
  expr: string;
  legendFormat?: string;
}
export interface FieldDefaults {
  unit?: string;
  min?: number;
  max?: number;
  mappings?: { type: string; options: Record<string, { text: string; color?: string }> }[];
  thresholds?: { steps: { color: string; value: number | null }[] };
}
interface Override {
  matcher: { id: string; options: string };
  properties: { id: string; value: unknown }[];
}
export interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Target[];
  fieldConfig?: { defaults: FieldDefaults; overrides: Override[] };
}
export interface Dashboard {
  title: string;
  panels: Panel[];
}

/** One drawn series: its legend, unit and axis, a value (or null: no sample) per point of `xs`. */
interface DrawnSeries {
  name: string;
  unit: string;
  right: boolean;
  values: (number | null)[];
}
interface DrawnPanel {
  type: string;
  title: string;
  gridPos: Panel['gridPos'];
  defaults: FieldDefaults;
  series: DrawnSeries[];
}
export interface PageData {
  title: string;
  subtitle: string;
  xs: number[];
  panels: DrawnPanel[];
}

/** A target that answered no series: the panel, its refId and the query as sent. */
export interface EmptyTarget {
  panel: string;
  refId: string;
  expr: string;
}

export interface Variables {
  job: string;
  instance: string;
  rateInterval: string;
  range: string;
}

/** Grafana's variables filled in as Grafana would for one selected gateway. */
export function fill(expr: string, v: Variables): string {
  return expr
    .replaceAll('$__rate_interval', v.rateInterval)
    .replaceAll('$__range', v.range)
    .replaceAll('$job', v.job)
    .replaceAll('$instance', v.instance.replace(/[.]/g, '\\\\.'));
}

/** A legend as Grafana makes it: {{label}} replaced by the series' label, or the series itself. */
function legendOf(format: string | undefined, metric: Record<string, string>): string {
  if (format) return format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, l: string) => metric[l] ?? '');
  const { __name__: name = '', ...labels } = metric;
  return `${name}{${Object.entries(labels)
    .map(([k, val]) => `${k}="${val}"`)
    .join(', ')}}`;
}

export async function queryPanels(
  dashboard: Dashboard,
  prometheus: string,
  vars: Variables,
  window: { start: number; end: number; step: number },
): Promise<{ xs: number[]; panels: DrawnPanel[]; empty: EmptyTarget[] }> {
  const xs: number[] = [];
  for (let t = window.start; t <= window.end; t += window.step) xs.push(t);
  const panels: DrawnPanel[] = [];
  const empty: EmptyTarget[] = [];
  for (const p of dashboard.panels) {
    const defaults = p.fieldConfig?.defaults ?? {};
    const series: DrawnSeries[] = [];
    for (const t of p.targets ?? []) {
      const expr = fill(t.expr, vars);
      const result: RangeSeries[] = await queryRange(prometheus, expr, window.start, window.end, window.step);
      if (result.length === 0) empty.push({ panel: p.title, refId: t.refId, expr });
      for (const r of result) {
        const byTime = new Map(r.values.map(([at, v]) => [Math.round(at), Number(v)]));
        const name = legendOf(t.legendFormat, r.metric);
        const override = (p.fieldConfig?.overrides ?? []).find((o) => o.matcher.id === 'byName' && o.matcher.options === name);
        const prop = (id: string) => override?.properties.find((x) => x.id === id)?.value;
        series.push({
          name,
          unit: (prop('unit') as string | undefined) ?? defaults.unit ?? 'none',
          right: prop('custom.axisPlacement') === 'right',
          values: xs.map((x) => {
            const v = byTime.get(x);
            return v === undefined || !Number.isFinite(v) ? null : v;
          }),
        });
      }
    }
    panels.push({ type: p.type, title: p.title, gridPos: p.gridPos, defaults, series });
  }
  return { xs, panels, empty };
}

/** The whole page, uPlot, the drawing script and the data inline: nothing is fetched when it opens. */
export function pageHtml(data: PageData): string {
  const uplot = readFileSync(join(UPLOT, 'uPlot.iife.min.js'), 'utf8');
  const css = readFileSync(join(UPLOT, 'uPlot.min.css'), 'utf8') + readFileSync(join(PAGE, 'dashboard.css'), 'utf8');
  const draw = readFileSync(join(PAGE, 'draw-dashboard.js'), 'utf8');
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  return `<!doctype html><html><head><meta charset="utf-8"><style>${css}</style></head>
<body><header><h1 id="title"></h1><p id="subtitle"></p></header><div id="grid"></div>
<script>${uplot}</script><script>${draw}\ndrawDashboard(uPlot, ${json});</script></body></html>`;
}
