import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { GaugeReading, GaugeSeries, Tally } from './tally';

// The Prometheus side of the metrics, required by lib/observe/metrics.ts on the first scrape
// only (Metrics.Enabled): the counts live in Tallies from the start, and each prom-client
// metric copies its Tally's counts when collected, so nothing counted before is lost.

export function buildRegistry(tallies: readonly Tally[], gauges: readonly (GaugeReading | GaugeSeries)[]): Registry {
  const registry = new Registry();
  for (const tally of tallies) {
    new Counter({
      name: tally.name,
      help: tally.help,
      labelNames: tally.labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const { labels, value } of tally.entries()) this.inc(labels, value);
      },
    });
  }
  for (const g of gauges) {
    if ('series' in g) {
      new Gauge({
        name: g.name,
        help: g.help,
        labelNames: g.labelNames,
        registers: [registry],
        collect() {
          this.reset();
          for (const { labels, value } of g.series()) this.set(labels, value);
        },
      });
      continue;
    }
    new Gauge({
      name: g.name,
      help: g.help,
      registers: [registry],
      collect() {
        this.set(g.read());
      },
    });
  }
  return registry;
}

/** Node's process metrics (memory, CPU, start time, event loop), collected at scrape time. */
export function addProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
}
