/**
 * A Prometheus counter family kept as plain numbers in a Map and handed to
 * prom-client only at scrape time, for counters bumped on the hot path (a
 * cache hit). prom-client's own Counter hashes and validates the label set on
 * every inc(), which costs microseconds per query (see command_stats.ts).
 */
import type { MetricValue, Registry } from 'prom-client';

interface Series {
  labels: Record<string, string>;
  value: number;
}

export class CounterFamily {
  private readonly series = new Map<string, Series>();

  constructor(
    registry: Registry,
    name: string,
    help: string,
    private readonly labelNames: readonly string[],
  ) {
    const self = this;
    registry.registerMetric({
      name,
      help,
      type: 'counter',
      aggregator: 'sum',
      // The shape prom-client's Registry reads when it renders /metrics.
      async get() {
        return { name, help, type: 'counter', aggregator: 'sum', values: self.values() };
      },
      reset(): void {
        self.series.clear();
      },
    } as never);
  }

  /** Adds `by` to the series with these label values (in labelNames order; already bounded by the caller). */
  inc(values: readonly string[], by = 1): void {
    const key = values.length === 1 ? values[0] : values.join('\u0000');
    let s = this.series.get(key);
    if (!s) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i]));
      s = { labels, value: 0 };
      this.series.set(key, s);
    }
    s.value += by;
  }

  /** The current value of one series (0 when never incremented). */
  get(values: readonly string[]): number {
    return this.series.get(values.length === 1 ? values[0] : values.join('\u0000'))?.value ?? 0;
  }

  private values(): MetricValue<string>[] {
    return [...this.series.values()].map((s) => ({ labels: s.labels, value: s.value }));
  }
}
