// The proxy's own histogram (proxy/observability/plain-histogram.ts) against prom-client's: the
// same observations read the same through a Registry (JSON and text), and a cluster of registries
// sums it as it sums prom-client's.
import { AggregatorRegistry, Histogram, Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { PlainHistogram } from '../../proxy/observability/plain-histogram.ts'

const buckets = [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
const labelNames = ['route', 'upstream'] as const
const observations: Array<[string, string, number]> = [
  ['movies', 'monolith', 0.001],
  ['movies', 'monolith', 0.002], // on a bound: counted in that bucket (le is "less or equal")
  ['movies', 'monolith', 0.0021],
  ['movies', 'movies-service', 0.3],
  ['movies', 'movies-service', 12], // above every bound: +Inf only
  ['default', 'monolith', 0.04],
]

function both() {
  const [ours, theirs] = [new Registry(), new Registry()]
  const plain = new PlainHistogram({ name: 'd_seconds', help: 'h', labelNames, buckets, registers: [ours] })
  const reference = new Histogram({ name: 'd_seconds', help: 'h', labelNames, buckets, registers: [theirs] })
  const series = new Map<string, ReturnType<typeof plain.seriesOf>>()
  for (const [route, upstream, value] of observations) {
    const key = `${route} ${upstream}`
    if (!series.has(key)) series.set(key, plain.seriesOf({ route, upstream }))
    series.get(key)!.observe(value)
    reference.observe({ route, upstream }, value)
  }
  return { ours, theirs, plain }
}

/** The text's sample lines with their labels in one order (prom-client puts `le` first). */
function samples(text: string): string[] {
  return text
    .split('\n')
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const m = /^(\w+)(?:\{(.*)\})? (.*)$/.exec(line)!
      return `${m[1]}{${(m[2] ?? '').split(',').filter(Boolean).sort().join(',')}} ${m[3]}`
    })
    .sort()
}

describe('PlainHistogram', () => {
  it("reads as prom-client's Histogram of the same observations, as JSON and as text", async () => {
    const { ours, theirs } = both()
    const [a, b] = [(await ours.getMetricsAsJSON())[0]!, (await theirs.getMetricsAsJSON())[0]!]
    expect({ ...a, values: undefined }).toEqual({ ...b, values: undefined })
    // Each value's labels, value and metric name (prom-client adds an exemplar field: null).
    type Value = { labels: Record<string, unknown>; value: number; metricName?: string }
    const essentials = (values: unknown[]) =>
      (values as Value[]).map(({ labels, value, metricName }) => JSON.stringify({ labels: Object.fromEntries(Object.entries(labels).sort()), value, metricName })).sort()
    expect(essentials(a.values)).toEqual(essentials(b.values))
    expect(samples(await ours.metrics())).toEqual(samples(await theirs.metrics()))
    expect(samples(await ours.metrics())).toContain('d_seconds_bucket{le="0.002",route="movies",upstream="monolith"} 2')
    expect(samples(await ours.metrics())).toContain('d_seconds_count{route="movies",upstream="movies-service"} 2')
  })

  it('is summed over cluster workers as prom-client sums its own', async () => {
    const { ours, theirs } = both()
    const twice = async (r: Registry) => [await r.getMetricsAsJSON(), await r.getMetricsAsJSON()]
    const [a, b] = [AggregatorRegistry.aggregate(await twice(ours)), AggregatorRegistry.aggregate(await twice(theirs))]
    expect(samples(await a.metrics())).toEqual(samples(await b.metrics()))
    expect(samples(await a.metrics())).toContain('d_seconds_count{route="movies",upstream="monolith"} 6')
  })

  it('resets every series, which keeps counting afterwards; refuses an unknown label and unsorted buckets', async () => {
    const registry = new Registry()
    const plain = new PlainHistogram({ name: 'r_seconds', help: 'h', labelNames, buckets, registers: [registry] })
    const series = plain.seriesOf({ route: 'movies', upstream: 'monolith' })
    series.observe(1)
    registry.resetMetrics()
    series.observe(0.003)
    expect(samples(await registry.metrics())).toEqual(expect.arrayContaining(['r_seconds_count{route="movies",upstream="monolith"} 1', 'r_seconds_sum{route="movies",upstream="monolith"} 0.003']))
    expect(() => plain.seriesOf({ route: 'movies', upstream: 'monolith', method: 'GET' } as never)).toThrow(/unknown label method/)
    expect(() => new PlainHistogram({ name: 'bad', help: 'h', labelNames, buckets: [1, 0.5], registers: [] })).toThrow(/ascend/)
  })
})
