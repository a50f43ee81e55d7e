// A Prometheus histogram whose series count in plain arrays, for the request path: prom-client's
// Histogram validates and hashes the labels again on every observe, even through a child made
// with labels() (0.67 µs against 0.01 µs here, bench/README numbers in proxy/README.md). It is
// registered in a prom-client Registry like prom-client's own metrics (name, help, type,
// aggregator, get, reset), so /metrics, the cluster workers' sum and the registry's JSON read it
// as they read any histogram.
import type { Histogram, MetricValueWithName, Registry } from 'prom-client'

export interface PlainHistogramOptions<L extends string> {
  name: string
  help: string
  labelNames: readonly L[]
  /** Upper bounds, ascending (the +Inf bucket is added). */
  buckets: readonly number[]
  registers: Registry[]
}

/** One series (one set of label values): observe() is the hot path. */
export interface HistogramSeries {
  observe(value: number): void
}

interface Series extends HistogramSeries {
  labels: Record<string, string>
  /** Per bucket, not cumulative; the last one is +Inf. */
  counts: Float64Array
  sum: number
  count: number
}

export class PlainHistogram<L extends string> {
  readonly name: string
  readonly help: string
  readonly type = 'histogram' as const
  readonly aggregator = 'sum' as const
  private readonly labelNames: readonly L[]
  private readonly bounds: readonly number[]
  private series: Series[] = []

  constructor(options: PlainHistogramOptions<L>) {
    if (options.buckets.some((b, i) => i > 0 && b <= options.buckets[i - 1]!)) throw new TypeError(`${options.name}: buckets must ascend`)
    this.name = options.name
    this.help = options.help
    this.labelNames = options.labelNames
    this.bounds = options.buckets
    // The registry takes any object of this shape; its types name prom-client's four classes only.
    for (const registry of options.registers) registry.registerMetric(this as unknown as Histogram<L>)
  }

  /** A new series of these label values (keep it: each call makes another). */
  seriesOf(labels: Record<L, string>): HistogramSeries {
    for (const name of Object.keys(labels)) if (!this.labelNames.includes(name as L)) throw new TypeError(`${this.name}: unknown label ${name}`)
    const bounds = this.bounds
    const series: Series = {
      labels: { ...labels },
      counts: new Float64Array(bounds.length + 1),
      sum: 0,
      count: 0,
      observe(value: number) {
        let i = 0
        while (i < bounds.length && value > bounds[i]!) i++
        series.counts[i]!++
        series.sum += value
        series.count++
      },
    }
    this.series.push(series)
    return series
  }

  /** The values as prom-client's Histogram gives them: per series its cumulative buckets, +Inf, sum and count. */
  async get(): Promise<{ name: string; help: string; type: 'histogram'; values: Array<MetricValueWithName<string>>; aggregator: 'sum' }> {
    const values: Array<MetricValueWithName<string>> = []
    const bucket = `${this.name}_bucket`
    for (const s of this.series) {
      let cumulative = 0
      this.bounds.forEach((le, i) => {
        cumulative += s.counts[i]!
        values.push({ labels: { ...s.labels, le }, value: cumulative, metricName: bucket })
      })
      values.push({ labels: { ...s.labels, le: '+Inf' }, value: s.count, metricName: bucket })
      values.push({ labels: { ...s.labels }, value: s.sum, metricName: `${this.name}_sum` })
      values.push({ labels: { ...s.labels }, value: s.count, metricName: `${this.name}_count` })
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator }
  }

  /** Every series back to zero (the series handed out keep counting). */
  reset(): void {
    for (const s of this.series) {
      s.counts.fill(0)
      s.sum = 0
      s.count = 0
    }
  }
}
