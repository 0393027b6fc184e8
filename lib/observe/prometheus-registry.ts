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
      new SeriesGauge(g, registry);
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

/**
 * A gauge whose series are read at each scrape. prom-client prints a gauge without labels as 0
 * when it holds no value; here a date not known is no series at all (0 would read as long past).
 */
class SeriesGauge extends Gauge {
  constructor(
    private readonly reading: GaugeSeries,
    registry: Registry,
  ) {
    super({ name: reading.name, help: reading.help, labelNames: reading.labelNames, registers: [registry] });
  }

  override async get() {
    this.reset();
    const series = [...this.reading.series()];
    for (const { labels, value } of series) this.set(labels, value);
    const metric = await super.get();
    return series.length > 0 ? metric : { ...metric, values: [] };
  }
}

/** Node's process metrics (memory, CPU, start time, event loop), collected at scrape time. */
export function addProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
}
