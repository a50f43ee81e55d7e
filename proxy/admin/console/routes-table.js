// The routes table: one row per route from GET /admin/state, with its rates from GET
// /admin/traffic. Every cell has a data-col (the tests and the phone layout read it).
import { h, num, pct, updateRows } from './dom.js'

const BREAKER_TEXT = { closed: 'closed', halfOpen: 'half-open', open: 'open' }

export function breakerBadge(upstream) {
  const state = upstream.breaker
  return h('span', { class: `breaker breaker-${state}`, 'data-upstream': upstream.name, 'data-state': state }, `${upstream.name}: ${BREAKER_TEXT[state] ?? state}`)
}

const cell = (col, label, ...content) => h('td', { 'data-col': col, 'data-label': label }, ...content)
const pair = (legacy, target) => (target === undefined ? legacy : `${legacy} · ${target}`)

/** Failed calls per second of each upstream (connect, timeout, reset, 5xx), whichever route made them. */
function failures(traffic, upstreams) {
  const rates = upstreams.map((u) => traffic?.upstreams?.[u.name]?.failureRps)
  if (rates.every((r) => !r)) return ''
  return h('span', { class: 'failures' }, `failed calls/s: ${upstreams.map((u, i) => `${u.name} ${num(rates[i] ?? 0)}`).join(' · ')}`)
}

/** A split route's stage in one line: reads, the writer side, parity drift and lag, read-your-writes hits on this proxy. */
export function stageText(stage) {
  const p = stage.parity
  const writes = stage.retired ? 'legacy retired' : stage.writes === null ? 'writes follow reads' : `writes ${stage.writes}`
  const drift = p.drift === null ? 'drift ?' : `drift ${p.drift}`
  const lag = p.lagSeconds === null ? 'lag ?' : `lag ${num(p.lagSeconds, 1)} s`
  // Where the stores decide who writes: a handover in flight or blocked, and open conflicts (which refuse the switch and retirement).
  const w = stage.writers
  const stores = !w ? '' : `${w.handover === 'settled' ? '' : ` · stores ${w.handover}`}${w.conflicts ? ` · ${w.conflicts} conflicts` : ''}`
  return h('span', { class: p.drift || w?.conflicts ? 'warn' : '', 'data-writes': stage.writes ?? 'reads', 'data-retired': String(stage.retired) }, `${writes} · ${drift} · ${lag} · ${stage.readYourWritesHits ?? 0} RYW${stores}`)
}

export function renderRoutes(tbody, state, traffic, onOpen) {
  const rates = new Map((traffic?.routes ?? []).map((r) => [r.name, r]))
  // Updated in place (dom.js updateRows): a keyboard user's focus on a button, and the scroll, survive the 2 s refresh.
  updateRows(
    tbody,
    state.routes.map((route) => {
      const r = rates.get(route.name)
      const split = Boolean(route.target)
      const shadow = r?.shadow
      return h(
        'tr',
        { 'data-route': route.name, 'data-key': route.name },
        h('th', { scope: 'row', 'data-col': 'route', 'data-label': 'Route' }, h('span', { class: 'name' }, route.name), h('code', {}, route.prefix)),
        cell('sides', 'Legacy → target', split ? `${route.legacy.name} → ${route.target.name}` : route.legacy.name),
        cell(
          'rollout',
          'Rollout',
          split ? h('span', { class: 'percent' }, route.percent === null ? 'custom' : `${route.percent} %`) : '—',
          split ? h('span', { class: `source source-${route.source}` }, route.source) : '',
        ),
        cell('stage', 'Stage', split && route.stage ? stageText(route.stage) : '—'),
        cell('rps', 'Requests/s', r ? pair(num(r.legacy.rps), split ? num(r.target?.rps) : undefined) : '…'),
        cell('errors', 'Errors', r ? pair(pct(r.legacy.errorPercent), split ? pct(r.target?.errorPercent) : undefined) : '…'),
        cell('fallbacks', 'Fallbacks/s', r && split ? h('span', { class: r.fallbackRps > 0 ? 'warn' : '' }, num(r.fallbackRps)) : '—'),
        cell('breakers', 'Breakers', breakerBadge(route.legacy), split ? breakerBadge(route.target) : '', failures(traffic, split ? [route.legacy, route.target] : [route.legacy])),
        cell(
          'shadow',
          'Shadow match',
          !split ? '—' : shadow ? h('button', { type: 'button', class: 'link', onclick: () => onOpen(route.name, 'diffs') }, shadow.matchPercent === null ? 'no comparisons · diffs' : `${pct(shadow.matchPercent)} · diffs`) : h('span', { class: 'muted' }, 'not available'),
        ),
        cell('open', 'Details', h('button', { type: 'button', 'aria-label': `Details of route ${route.name}`, onclick: () => onOpen(route.name) }, 'Details')),
      )
    }),
  )
}
