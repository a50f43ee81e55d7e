// The one Prometheus text reader of the tests.

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/
const LABEL = /(\w+)="((?:[^"\\]|\\.)*)"/g

const labelsOf = (text: string | undefined): Record<string, string> => Object.fromEntries([...(text ?? '').matchAll(LABEL)].map((m) => [m[1], m[2]]))

/**
 * The value of `selector` — `name` or `name{label="value",...}` — in Prometheus text: the sum of
 * the samples of that name whose labels include the given ones; undefined when none matches.
 * E.g. metric(text, 'proxy_breaker_state{upstream="movies-service"}').
 */
export function metric(text: string, selector: string): number | undefined {
  const [, name, wanted] = SAMPLE.exec(`${selector} 0`) ?? []
  if (!name) throw new Error(`not a metric selector: ${selector}`)
  const labels = Object.entries(labelsOf(wanted))
  let sum: number | undefined
  for (const line of text.split('\n')) {
    const m = SAMPLE.exec(line)
    if (!m || m[1] !== name) continue
    const have = labelsOf(m[2])
    if (labels.every(([k, v]) => have[k] === v)) sum = (sum ?? 0) + Number(m[3])
  }
  return sum
}

/** `name{...}` from a name and a label set (for callers that hold the labels as an object). */
export function selector(name: string, labels: Record<string, string> = {}): string {
  const entries = Object.entries(labels)
  return entries.length ? `${name}{${entries.map(([k, v]) => `${k}="${v}"`).join(',')}}` : name
}
