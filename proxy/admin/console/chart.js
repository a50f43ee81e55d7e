// The per-route chart of the last hour: rollout %, errors % per side (traffic-history.ts) and shadow mismatch %, one
// 0-100 % axis, inline SVG (colours come from console.css classes). A missing value (no
// traffic, no comparisons) leaves a gap rather than a false zero.
import { h } from './dom.js'

const SVG = 'http://www.w3.org/2000/svg'
const H = 200
const PAD = { left: 34, right: 8, top: 8, bottom: 20 }
export const SERIES = [
  { key: 'percent', label: 'Rollout %', class: 'series-rollout' },
  { key: 'legacyErrorPercent', label: 'Legacy errors %', class: 'series-legacy' },
  { key: 'targetErrorPercent', label: 'Target errors %', class: 'series-target' },
  { key: 'mismatchPercent', label: 'Shadow mismatch %', class: 'series-mismatch' },
]

const svg = (tag, attrs = {}, text) => {
  const el = document.createElementNS(SVG, tag)
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v))
  if (text !== undefined) el.textContent = text
  return el
}

/** "-45 min", "-30 s", "now". */
const ago = (ms) => (ms < 1000 ? 'now' : ms >= 120_000 ? `-${Math.round(ms / 60_000)} min` : `-${Math.round(ms / 1000)} s`)

export function renderChart(container, route, history) {
  // Drawn at the container's own width, so the text keeps its size on any screen.
  const W = Math.max(280, container.clientWidth || 600)
  const points = history.points ?? []
  const end = Date.now()
  // The last hour, or since the proxy started when that is shorter.
  const first = points.length ? Date.parse(points[0].at) : end
  const start = Math.min(end - 60_000, Math.max(end - (history.retentionSeconds ?? 3600) * 1000, first))
  const x = (t) => PAD.left + ((t - start) / (end - start)) * (W - PAD.left - PAD.right)
  const y = (v) => PAD.top + (1 - v / 100) * (H - PAD.top - PAD.bottom)
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: 'chart', role: 'img', 'aria-labelledby': 'chart-desc' })
  const last = points[points.length - 1]
  const desc = last
    ? `Route ${route}, ${points.length} points over the last hour. Latest: ` + SERIES.map((s) => `${s.label} ${last[s.key] ?? 'none'}`).join(', ')
    : `Route ${route}: no points yet (one every ${history.intervalSeconds} s)`
  root.append(svg('title', { id: 'chart-desc' }, desc))
  for (const v of [0, 25, 50, 75, 100]) {
    root.append(svg('line', { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: 'grid' }))
    root.append(svg('text', { x: PAD.left - 4, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, `${v}`))
  }
  for (const share of [0, 0.25, 0.5, 0.75, 1]) {
    const t = start + share * (end - start)
    root.append(svg('text', { x: x(t), y: H - 4, 'text-anchor': share === 0 ? 'start' : share === 1 ? 'end' : 'middle', class: 'axis' }, ago(end - t)))
  }
  for (const series of SERIES) {
    let d = ''
    const dots = [] // a value between two gaps has no line: it is drawn as a dot
    let run = []
    const endRun = () => {
      if (run.length === 1) dots.push(run[0])
      run = []
    }
    for (const p of points) {
      const v = p[series.key]
      if (v === null || v === undefined) {
        endRun()
        continue
      }
      const at = [x(Date.parse(p.at)).toFixed(1), y(Math.min(100, Math.max(0, v))).toFixed(1)]
      d += `${run.length ? 'L' : 'M'}${at[0]},${at[1]}`
      run.push(at)
    }
    endRun()
    if (d) root.append(svg('path', { d, class: `line ${series.class}`, 'data-series': series.key }))
    for (const [cx, cy] of dots) root.append(svg('circle', { cx, cy, r: 3, class: `dot ${series.class}` }))
  }
  const legend = h('ul', { class: 'legend' }, ...SERIES.map((s) => h('li', {}, h('span', { class: `swatch ${s.class}`, 'aria-hidden': 'true' }), s.label)))
  container.replaceChildren(root, legend)
}
