// The console's main module: log in, then poll the admin API every 2 s and redraw. The
// routes table and the chart come from this proxy's own endpoints (/admin/state,
// /admin/traffic, /admin/history); ramps, diffs and the ledger from panels.js.
import { api, routePath, token, Unauthorized } from './api.js'
import { renderChart } from './chart.js'
import { $, h } from './dom.js'
import { RAMP_TEMPLATES, loadDiffs, loadLedger, loadNoise, loadRamp, noiseResetRequest, rampRequest, shadowRequest } from './panels.js'
import { loadParity } from './parity.js'
import { renderRoutes, stageText } from './routes-table.js'

const POLL_MS = 2000
let open = null // the route whose details are shown
let timer = null
let generation = 0 // a new login starts a new polling loop; an older one stops
let knownRoutes = []
let allowed = { viewer: true, operator: false, owner: false } // what the token's role may do (applyRole)

/** An element marked data-needs="operator|owner" is shown only to a role that may use it. */
const permitted = (el) => !el.dataset.needs || allowed[el.dataset.needs] === true

function showLogin(message = '') {
  clearTimeout(timer)
  generation++
  $('#dashboard').hidden = true
  $('#logout').hidden = true
  $('#login').hidden = false
  $('#login-error').textContent = message
  $('#live').textContent = ''
  $('#token').focus()
}

function showDashboard() {
  $('#login').hidden = true
  $('#dashboard').hidden = false
  $('#logout').hidden = false
}

/** Runs an admin call; a 401 (token gone or changed on the proxy) sends the user back to log in. */
async function guarded(work) {
  try {
    return await work()
  } catch (error) {
    if (error instanceof Unauthorized) {
      token.clear()
      showLogin(`The proxy refused the token (401): ${error.message}. Log in again.`)
    } else {
      $('#live').textContent = `Update failed (${error.message}); retrying…`
    }
    return undefined
  }
}

async function refresh() {
  const [state, traffic] = await Promise.all([api('/admin/state'), api('/admin/traffic')])
  if (!state.ok) throw new Error(state.error)
  knownRoutes = state.body.routes
  renderRoutes($('#routes tbody'), state.body, traffic.ok ? traffic.body : undefined, openRoute)
  const f = state.body.flags
  $('#flags-status').textContent = `Flags: ${f.kind} (${f.location})${f.healthy ? '' : ` — NOT HEALTHY, serving the last known flags: ${f.lastError ?? ''}`}`
  fillLedgerFilter()
  const waits = [loadLedger($('#ledger-state'), $('#ledger tbody'), $('#ledger-route').value)]
  if (open) waits.push(refreshDetail())
  await Promise.all(waits)
  $('#live').textContent = `Live · updated ${new Date().toLocaleTimeString()}`
}

async function refreshDetail() {
  // The route asked for, kept: the user may open another one while these answers are on their way.
  const name = open
  const route = knownRoutes.find((r) => r.name === name)
  if (!route) return
  const current = () => open === name
  const history = await api(`/admin/history?route=${encodeURIComponent(name)}`)
  if (!current()) return
  if (history.ok && history.body?.route === name) renderChart($('#chart'), name, history.body)
  else $('#chart').replaceChildren(h('p', { class: 'error' }, history.ok ? `history of another route than ${name}` : history.error))
  if (route.target) $('#stage-state').replaceChildren(route.stage ? stageText(route.stage) : '', route.stage ? ` · reads ${route.stage.readPercent ?? 'custom'} %` : '')
  if (route.target)
    await Promise.all([
      loadRamp($('#ramp-state'), name, current),
      loadDiffs($('#diffs-summary'), $('#diffs-list'), name, current),
      loadNoise($('#noise-state'), $('#noise tbody'), name, current),
      loadParity($('#parity-state'), name, current),
    ])
}

function loop(mine) {
  timer = setTimeout(async () => {
    if (mine !== generation) return
    await guarded(refresh)
    if (mine === generation) loop(mine)
  }, POLL_MS)
}

function openRoute(name, focus) {
  open = name
  const route = knownRoutes.find((r) => r.name === name)
  $('#detail').hidden = false
  $('#detail-name').textContent = `${name} (${route?.prefix ?? ''})`
  for (const id of ['#rollout-form', '#ramp-form', '#shadow-form', '#stage-form', '#noise-reset', '#parity-check']) $(id).hidden = !route?.target || !permitted($(id))
  $('#stage-state').textContent = route?.target ? '' : 'This route has no target: no stages.'
  $('#ramp-state').textContent = route?.target ? '' : 'This route has no target: nothing to move.'
  $('#diffs-summary').textContent = ''
  $('#diffs-list').replaceChildren()
  $('#noise-state').textContent = ''
  $('#noise tbody').replaceChildren()
  $('#parity-state').textContent = route?.target ? '' : 'This route has one store: nothing to compare.'
  if (route?.percent !== undefined && route.percent !== null) $('#rollout-percent').value = String(route.percent)
  guarded(refreshDetail)
  const target = focus === 'diffs' ? $('#diffs-title') : $('#detail-title')
  target.setAttribute('tabindex', '-1')
  target.focus()
  target.scrollIntoView({ block: 'start' })
}

function fillLedgerFilter() {
  const select = $('#ledger-route')
  const have = [...select.options].map((o) => o.value)
  for (const r of knownRoutes) if (!have.includes(r.name)) select.append(h('option', { value: r.name }, r.name))
}

/** Sends one steering request, says what happened in `out`, redraws. */
async function steer(out, request) {
  out.className = 'result'
  out.textContent = 'Sending…'
  const res = await guarded(() => api(request.path, request))
  if (!res) return
  out.classList.add(res.ok ? 'ok' : 'error')
  out.textContent = res.ok ? `Done (${request.method} ${request.path})` : res.missing ? `Not available on this proxy (${request.method} ${request.path})` : `Refused (${res.status}): ${res.error}`
  await guarded(refresh)
}

function wire() {
  $('#login-form').addEventListener('submit', async (event) => {
    event.preventDefault()
    const given = $('#token').value.trim()
    $('#login-error').textContent = ''
    try {
      const res = await api('/admin/state', { bearer: given })
      if (!res.ok) throw new Error(res.error)
      token.set(given)
      $('#token').value = ''
      start()
    } catch (error) {
      $('#login-error').textContent =
        error instanceof Unauthorized ? 'Wrong admin token: the proxy answered 401. Check ADMIN_TOKEN (npm start prints it).' : `Could not reach the admin API: ${error.message}`
    }
  })
  $('#logout').addEventListener('click', () => {
    token.clear()
    open = null
    $('#whoami').textContent = ''
    showLogin('Logged out.')
  })
  $('#rollout-form').addEventListener('submit', (event) => {
    event.preventDefault()
    const body = { percent: Number($('#rollout-percent').value), reason: $('#rollout-reason').value.trim() }
    steer($('#rollout-result'), { path: routePath(open, 'rollout'), method: 'PUT', body })
  })
  const templates = $('#ramp-template')
  for (const [key, t] of Object.entries(RAMP_TEMPLATES)) templates.append(h('option', { value: key }, t.label))
  $('#ramp-form').addEventListener('submit', (event) => {
    event.preventDefault()
    const action = event.submitter?.value ?? 'start'
    steer($('#ramp-result'), rampRequest(open, action, templates.value, $('#ramp-reason').value.trim()))
  })
  // Each guarded step is a button; a refusal shows the guard, its value and its limit (steer).
  $('#stage-form').addEventListener('submit', (event) => {
    event.preventDefault()
    const action = event.submitter?.value ?? 'writes-target'
    const reason = $('#stage-reason').value.trim()
    const force = $('#stage-force').checked ? { force: true } : {}
    const request =
      action === 'retire'
        ? { path: routePath(open, 'retire'), method: 'POST', body: { reason, ...force } }
        : { path: routePath(open, 'writes'), method: 'PUT', body: { side: action === 'writes-legacy' ? 'legacy' : 'target', reason, ...force } }
    steer($('#stage-result'), request)
  })
  $('#parity-check').addEventListener('click', () => {
    const name = open // the answer is drawn only while this route is still the one open
    guarded(() => loadParity($('#parity-state'), name, () => open === name, { now: true }))
  })
  $('#shadow-form').addEventListener('submit', (event) => {
    event.preventDefault()
    steer($('#shadow-result'), shadowRequest(open, Number($('#shadow-percent').value), $('#shadow-ignore').value))
  })
  $('#noise-reset').addEventListener('click', () => steer($('#noise-result'), noiseResetRequest(open)))
  $('#ledger-route').addEventListener('change', () => guarded(() => loadLedger($('#ledger-state'), $('#ledger tbody'), $('#ledger-route').value)))
}

/** Shows only what the token's role may do (GET /admin/whoami; the proxy refuses the rest with 403 anyway). */
async function applyRole() {
  const me = await api('/admin/whoami')
  const may = me.ok ? me.body.may : { read: true, change: false, irreversible: false }
  allowed = { viewer: true, operator: may.change === true, owner: may.irreversible === true }
  for (const el of document.querySelectorAll('[data-needs]')) el.hidden = !permitted(el)
  $('#whoami').textContent = me.ok ? `${me.body.actor} (${me.body.role})` : ''
}

async function start() {
  showDashboard()
  const mine = ++generation
  await guarded(applyRole)
  await guarded(refresh)
  if (mine === generation) loop(mine)
}

wire()
if (token.get()) start()
else showLogin()
