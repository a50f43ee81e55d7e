// The panels over issue 12's endpoints: ramp (GET/PUT /admin/routes/:name/ramp, POST
// .../ramp/pause, .../ramp/resume, POST .../rollback), shadow diffs (GET .../diffs, PUT
// .../shadow), the learned noise (GET .../shadow, DELETE .../shadow/noise) and the ledger (GET /admin/ledger?route=&limit=). On a proxy without them the
// panel says "not available" (api.js: `missing`). Field names follow the issue's text; the
// few alternatives read below are the only guesses.
import { api, routePath } from './api.js'
import { h, updateRows } from './dom.js'

export const NOT_AVAILABLE = 'not available on this proxy'

export const RAMP_TEMPLATES = {
  standard: { label: 'Standard: 5 → 25 → 50 → 100 %, every 5 min', steps: [5, 25, 50, 100], intervalSeconds: 300, maxErrorRatePercent: 1, maxMismatchRatePercent: 0.5, maxLatencyRatio: 1.5, minRequests: 100 },
  cautious: { label: 'Cautious: 1 → 5 → 10 → 25 → 50 → 100 %, every 10 min', steps: [1, 5, 10, 25, 50, 100], intervalSeconds: 600, maxErrorRatePercent: 0.5, maxMismatchRatePercent: 0.1, maxLatencyRatio: 1.2, minRequests: 200 },
  quick: { label: 'Quick (staging): 10 → 50 → 100 %, every minute', steps: [10, 50, 100], intervalSeconds: 60, maxErrorRatePercent: 2, maxMismatchRatePercent: 1, maxLatencyRatio: 2, minRequests: 20 },
}

/** The request each ramp button makes; every one carries the reason typed in. */
export function rampRequest(route, action, template, reason) {
  if (action === 'start') {
    const { label: _label, ...body } = RAMP_TEMPLATES[template]
    return { path: routePath(route, 'ramp'), method: 'PUT', body: { ...body, reason } }
  }
  if (action === 'rollback') return { path: routePath(route, 'rollback'), method: 'POST', body: { reason } }
  return { path: routePath(route, `ramp/${action}`), method: 'POST', body: { reason } }
}

const reasonText = (reason) =>
  reason === null || reason === undefined ? '' : typeof reason === 'string' ? reason : Object.entries(reason).map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : v}`).join(', ')
const timeText = (t) => (t ? new Date(t).toLocaleTimeString() : '')

/** GET .../ramp → { state, percent, step, nextStepAt, reason, window }. */
export async function loadRamp(el, route, current = () => true) {
  const res = await api(routePath(route, 'ramp'))
  if (!current()) return // another route was opened meanwhile: this answer is not for the panel any more
  if (res.missing) return el.replaceChildren(h('span', { class: 'muted' }, `Ramps: ${NOT_AVAILABLE}`))
  if (res.code === 'CA_ERR_NO_RAMP') return el.replaceChildren('No ramp on this route.')
  if (!res.ok) return el.replaceChildren(h('span', { class: 'error' }, res.error))
  const r = res.body
  el.replaceChildren(
    h('span', { class: `ramp ramp-${r.state}`, 'data-state': r.state }, String(r.state).replace('_', ' ')),
    ` at ${r.percent} %`,
    r.step !== undefined ? `, step ${r.step}` : '',
    r.state === 'running' && r.nextStepAt ? `, next step at ${timeText(r.nextStepAt)}` : '',
    r.reason ? h('span', { class: 'reason', 'data-col': 'ramp-reason' }, ` — ${reasonText(r.reason)}`) : '',
  )
}

/** GET .../diffs → counts and the latest mismatches: method, path, both statuses, differing JSON paths with both values. */
export async function loadDiffs(el, list, route, current = () => true) {
  const res = await api(routePath(route, 'diffs'))
  if (!current()) return
  if (res.missing) {
    el.replaceChildren(h('span', { class: 'muted' }, `Shadow comparison: ${NOT_AVAILABLE}`))
    return list.replaceChildren()
  }
  if (!res.ok) return el.replaceChildren(h('span', { class: 'error' }, res.error))
  const body = res.body ?? {}
  const counts = body.counts ?? {}
  el.replaceChildren(Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(' · ') || 'No comparisons yet.')
  list.replaceChildren(
    ...(body.mismatches ?? []).map((m) => {
      return h(
        'article',
        { class: 'diff' },
        h('p', {}, h('code', {}, `${m.method} ${m.path}`), ` legacy ${m.legacy.upstream} ${m.legacy.status} · target ${m.target.upstream} ${m.target.status}`, m.at ? ` · ${timeText(m.at)}` : ''),
        h(
          'table',
          {},
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'JSON path'), h('th', { scope: 'col' }, 'Legacy'), h('th', { scope: 'col' }, 'Target'))),
          h('tbody', {}, ...m.differences.map((d) => h('tr', {}, h('td', {}, h('code', {}, d.path)), h('td', {}, h('code', {}, JSON.stringify(d.legacy))), h('td', {}, h('code', {}, JSON.stringify(d.target)))))),
        ),
      )
    }),
  )
}

/** GET .../shadow → the noise rules learned (when, confirmations, expiry) and the leaves still being confirmed. */
export async function loadNoise(state, tbody, route, current = () => true) {
  const res = await api(routePath(route, 'shadow'))
  if (!current()) return
  if (res.missing) {
    state.replaceChildren(h('span', { class: 'muted' }, `Learned noise: ${NOT_AVAILABLE}`))
    return tbody.replaceChildren()
  }
  if (!res.ok) return state.replaceChildren(h('span', { class: 'error' }, res.error))
  const body = res.body ?? {}
  const learned = body.learnedNoise ?? []
  const pending = body.pendingNoise ?? []
  const detect = body.shadow?.detectNoise ? `Noise detection on: a leaf needs ${body.shadow.noiseConfirmations} different requests within ${body.shadow.noiseWindowSeconds} s, and is learned for ${body.shadow.noiseTtlSeconds} s.` : 'Noise detection off.'
  const waiting = pending.length ? ` Being confirmed: ${pending.map((p) => `${p.rule} (${p.confirmations}/${p.needed})`).join(', ')}.` : ''
  state.replaceChildren(`${detect}${learned.length ? '' : ' Nothing learned.'}${waiting}`)
  updateRows(
    tbody,
    learned.map((r) =>
      h(
        'tr',
        { 'data-key': r.rule },
        h('td', { 'data-label': 'Rule' }, h('code', {}, r.rule)),
        h('td', { 'data-label': 'Learned' }, new Date(r.learnedAt).toLocaleString()),
        h('td', { 'data-label': 'Confirmations', 'data-col': 'confirmations' }, String(r.confirmations)),
        h('td', { 'data-label': 'Expires' }, new Date(r.expiresAt).toLocaleString()),
      ),
    ),
  )
}

/** DELETE .../shadow/noise: forgets the learned noise (a ledger entry names who). */
export const noiseResetRequest = (route) => ({ path: routePath(route, 'shadow/noise'), method: 'DELETE' })

/** PUT .../shadow {"percent", "ignore": [...]}. */
export const shadowRequest = (route, percent, ignoreText) => ({
  path: routePath(route, 'shadow'),
  method: 'PUT',
  body: { percent, ignore: ignoreText.split(',').map((s) => s.trim()).filter(Boolean) },
})

/** GET /admin/ledger?route=&limit= → entries: time, route, flag, from → to, actor, reason. */
/** What a ledger entry moved: reads (percent), the writer side, a freeze, the retirement; with the guard values of the moment. */
function changeText(e) {
  const guard = e.guard ? ` [${Object.entries(e.guard).filter(([k]) => k !== 'checkedAt').map(([k, v]) => `${k} ${v}`).join(', ')}]` : ''
  const forced = e.forced ? ' FORCED' : ''
  if (e.stage === 'writes') return `writes ${e.fromSide ?? 'with reads'} → ${e.toSide}${forced}${guard}`
  if (e.stage === 'retire') return `legacy retired${forced}${guard}`
  if (e.stage === 'freeze') return `ramp frozen at ${e.to} %${guard}`
  if (e.stage === 'shadow') return shadowChangeText(e)
  return `${e.source} ${e.from ?? 'custom'} % → ${e.to ?? 'custom'} %`
}

/** A shadow entry: settings set (the shadow percent), noise learned, expired or reset (the rules). */
function shadowChangeText(e) {
  const rules = (e.shadow?.rules ?? []).map((r) => r.rule).join(', ')
  switch (e.shadow?.change) {
    case 'noise-learned':
      return `shadow noise learned: ${rules}`
    case 'noise-expired':
      return `shadow noise expired: ${rules}`
    case 'noise-reset':
      return `shadow noise reset${rules ? `: ${rules}` : ' (nothing learned)'}`
    default:
      return `shadow ${e.from} % → ${e.to} %${e.shadow?.settings?.detectNoise ? ', noise detection on' : ''}${rules ? `; noise forgotten: ${rules}` : ''}`
  }
}

export async function loadLedger(state, tbody, route) {
  const res = await api(`/admin/ledger?limit=100${route ? `&route=${encodeURIComponent(route)}` : ''}`)
  if (res.missing) {
    state.replaceChildren(h('span', { class: 'muted' }, `Ledger: ${NOT_AVAILABLE}`))
    return tbody.replaceChildren()
  }
  if (!res.ok) return state.replaceChildren(h('span', { class: 'error' }, res.error))
  const entries = res.body?.entries ?? []
  state.replaceChildren(entries.length ? '' : 'No entries yet.')
  updateRows(
    tbody,
    entries.map((e) =>
      h(
        'tr',
        { 'data-route': e.route, 'data-key': `${e.at} ${e.route} ${e.flag} ${e.to}` },
        h('td', { 'data-label': 'Time' }, new Date(e.at).toLocaleString()),
        h('td', { 'data-label': 'Route' }, e.route),
        h('td', { 'data-label': 'Change', 'data-stage': e.stage ?? 'reads' }, changeText(e)),
        h('td', { 'data-label': 'Actor' }, e.actor),
        h('td', { 'data-label': 'Reason', 'data-col': 'reason' }, reasonText(e.reason)),
      ),
    ),
  )
}
