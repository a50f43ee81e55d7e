// The data parity panel: the last check of GET /admin/routes/:name/parity?cached=true (the
// proxy checks every route's stores periodically), with a button to compare now.
import { api, routePath } from './api.js'
import { h, num } from './dom.js'

const list = (label, ids, total) => (total > 0 ? h('p', {}, `${label} (${total}): `, h('code', {}, ids.join(', ')), ids.length < total ? ' …' : '') : null)

export async function loadParity(el, route, current = () => true, { now = false } = {}) {
  const res = await api(`${routePath(route, 'parity')}${now ? '' : '?cached=true'}`)
  if (!current()) return // another route was opened meanwhile: this answer is not for the panel any more
  if (res.missing) return el.replaceChildren(h('span', { class: 'muted' }, 'Data parity: not available on this proxy'))
  if (!res.ok) return el.replaceChildren(h('span', { class: 'error' }, res.error))
  const p = res.body ?? {}
  if (!p.available) return el.replaceChildren(h('p', { class: 'muted' }, `Data parity: unknown — ${p.reason ?? 'no check yet'}`))
  const state = p.drift === 0 ? 'in step' : `${p.drift} records differ`
  el.replaceChildren(
    h('p', {}, h('strong', {}, `Drift ${p.drift}`), ` (${state}) · legacy ${p.legacy.count} · target ${p.target.count} · replication lag ${p.lagSeconds === null ? 'unknown' : `${num(p.lagSeconds, 1)} s`} · checked ${new Date(p.checkedAt).toLocaleTimeString()}`),
    ...[list('Missing on legacy', p.missingOnLegacy, p.missing.onLegacy), list('Missing on target', p.missingOnTarget, p.missing.onTarget)].filter(Boolean),
    ...(p.differing.length ? [h('ul', {}, ...p.differing.map((d) => h('li', {}, h('code', {}, d.id), ` differs at ${d.paths.join(', ') || '(key order only)'}`)))] : []),
  )
}
