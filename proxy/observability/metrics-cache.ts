// /metrics renders at most once per `ms` (1 s): rendering every series costs the proxy about nine
// health checks, and the operators' listener must not be made busy by a scraper run wild. Scrapes
// within the interval share one rendering (and one in flight); a failed one is not kept.
export function renderedAtMostEvery(render: () => Promise<string>, ms = 1_000): () => Promise<string> {
  let last: { at: number; text: Promise<string> } | undefined
  return () => {
    const now = Date.now()
    if (last && now - last.at < ms) return last.text
    const current = { at: now, text: render() }
    current.text.catch(() => {
      if (last === current) last = undefined
    })
    last = current
    return current.text
  }
}
