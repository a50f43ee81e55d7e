// The per-route chart of the last hour: rollout %, 5xx % per side and shadow mismatch %, one
// 0-100 % axis, inline SVG (colours come from console.css classes). A missing value (no
// traffic, no comparisons) leaves a gap rather than a false zero.
import { h } from './dom.js'

const SVG = 'http://www.w3.org/2000/svg'
const W = 600
const H = 180
const PAD = { left: 34, right: 8, top: 8, bottom: 20 }
export const SERIES = [
  { key: 'percent', label: 'Rollout %', class: 'series-rollout' },
  { key: 'legacyErrorPercent', label: 'Legacy 5xx %', class: 'series-legacy' },
  { key: 'targetErrorPercent', label: 'Target 5xx %', class: 'series-target' },
  { key: 'mismatchPercent', label: 'Shadow mismatch %', class: 'series-mismatch' },
]

const svg = (tag, attrs = {}, text) => {
  const el = document.createElementNS(SVG, tag)
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v))
  if (text !== undefined) el.textContent = text
  return el
}

export function renderChart(container, route, history) {
  const end = Date.now()
  const start = end - (history.retentionSeconds ?? 3600) * 1000
  const x = (t) => PAD.left + ((t - start) / (end - start)) * (W - PAD.left - PAD.right)
  const y = (v) => PAD.top + (1 - v / 100) * (H - PAD.top - PAD.bottom)
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-labelledby': 'chart-desc' })
  const points = history.points ?? []
  const last = points[points.length - 1]
  const desc = last
    ? `Route ${route}, ${points.length} points over the last hour. Latest: ` + SERIES.map((s) => `${s.label} ${last[s.key] ?? 'none'}`).join(', ')
    : `Route ${route}: no points yet (one every ${history.intervalSeconds} s)`
  root.append(svg('title', { id: 'chart-desc' }, desc))
  for (const v of [0, 25, 50, 75, 100]) {
    root.append(svg('line', { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: 'grid' }))
    root.append(svg('text', { x: PAD.left - 4, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, `${v}`))
  }
  for (const minutes of [60, 45, 30, 15, 0]) {
    root.append(svg('text', { x: x(end - minutes * 60_000), y: H - 4, 'text-anchor': 'middle', class: 'axis' }, minutes ? `-${minutes} min` : 'now'))
  }
  for (const series of SERIES) {
    let d = ''
    let pen = false
    for (const p of points) {
      const v = p[series.key]
      if (v === null || v === undefined) {
        pen = false
        continue
      }
      d += `${pen ? 'L' : 'M'}${x(Date.parse(p.at)).toFixed(1)},${y(Math.min(100, Math.max(0, v))).toFixed(1)}`
      pen = true
    }
    if (d) root.append(svg('path', { d, class: `line ${series.class}`, 'data-series': series.key }))
  }
  const legend = h('ul', { class: 'legend' }, ...SERIES.map((s) => h('li', {}, h('span', { class: `swatch ${s.class}`, 'aria-hidden': 'true' }), s.label)))
  container.replaceChildren(root, legend)
}
