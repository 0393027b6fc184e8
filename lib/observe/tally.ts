// A counter the gateway keeps whether or not metrics are served: a number per label set, in a
// plain Map. prom-client (~12 MB of RSS once loaded) reads these only when /metrics is scraped
// (lib/observe/prometheus-registry.ts), so a gateway with Metrics off never loads it.

export type Labels = Readonly<Record<string, string>>;

export class Tally {
  /**
   * Label values joined by "\u0000" → the labels as first given (their order is the output's) and the count.
   * Bounded by the label values, never by devices: callers pass a method from a fixed list, a
   * status code, a route name or a reason folded into a few kinds (metrics.ts).
   */
  private readonly counts = new Map<string, { labels: Labels; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[] = [],
  ) {}

  inc(labels: Labels = {}, by = 1): void {
    let key = '';
    for (const name of this.labelNames) key += `${labels[name] ?? ''}\u0000`;
    const seen = this.counts.get(key);
    if (seen) seen.value += by;
    else this.counts.set(key, { labels, value: by });
  }

  entries(): IterableIterator<{ labels: Labels; value: number }> {
    return this.counts.values();
  }
}

/** A gauge read at scrape time. */
export interface GaugeReading {
  name: string;
  help: string;
  read(): number;
}

/**
 * A gauge whose series are read at scrape time, each with its labels; a series not listed is
 * absent from the output (a date not known is no series, never a 0 an alert would read as past).
 */
export interface GaugeSeries {
  name: string;
  help: string;
  labelNames: readonly string[];
  series(): Iterable<{ labels: Labels; value: number }>;
}
