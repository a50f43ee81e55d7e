// The migration console in a real browser (Debian's chromium through playwright-core) against
// a real proxy listening on 127.0.0.1 with stub upstreams: log in, the route map in the table,
// a rollout moved in the page changes where new users go, a dead target turns its breaker red
// and fallbacks appear, a wrong token is refused clearly, the page works at phone width, and
// it runs under its strict CSP without a single violation or console error.
import type { AddressInfo } from 'node:net'
import { randomUUID } from 'node:crypto'
import type { Browser } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { NO_CHROMIUM, findChromium, launchChromium } from '../helpers/chromium.ts'
import { eventually } from '../helpers/poll.ts'
import { ADMIN_TOKEN, admin, flagsFileAt, startProxy, startStubs, type ProxyUnderTest, type Stubs } from '../proxy/proxy-harness.ts'
import { ConsolePage, PHONE } from './console-page.ts'

const executable = findChromium()
if (!executable) {
  // CI installs it (.ci/run): there a missing browser is a failure, not a skip.
  if (process.env.CI) throw new Error(NO_CHROMIUM)
  console.warn(NO_CHROMIUM)
}

/** A route with no ramp yet answers GET .../ramp with 404 (the panel says "No ramp on this route"); the browser logs it all the same. */
const NO_RAMP_YET = /status of 404 .*\/admin\/routes\/[a-z0-9-]+\/ramp\)$/
/** A guarded stage step the test expects refused (409); the browser logs it all the same. */
const STAGE_REFUSED = /status of 409 .*\/admin\/routes\/[a-z0-9-]+\/(writes|retire)\)$/

/** One proxy (with stub upstreams, both listeners on 127.0.0.1) and one browser for a describe block; each test opens its page as ctx.page. */
function useConsole(env: Record<string, string>) {
  const ctx = {} as { stubs: Stubs; proxy: ProxyUnderTest; browser: Browser; baseUrl: string; opsUrl: string; page: ConsolePage | undefined }
  beforeAll(async () => {
    ctx.stubs = await startStubs()
    ctx.proxy = await startProxy(ctx.stubs, env)
    await ctx.proxy.app.listen({ port: 0, host: '127.0.0.1' })
    ctx.baseUrl = `http://127.0.0.1:${(ctx.proxy.app.server.address() as AddressInfo).port}`
    // The console and the admin API are on the operators' listener only.
    await ctx.proxy.ops.listen({ port: 0, host: '127.0.0.1' })
    ctx.opsUrl = `http://127.0.0.1:${(ctx.proxy.ops.server.address() as AddressInfo).port}`
    ctx.browser = await launchChromium(executable!)
  })
  afterEach(async () => {
    // Every state the page went through ran under the CSP without a violation or a console error.
    const problems = ctx.page?.problemsExcept(new RegExp(`${NO_RAMP_YET.source}|${STAGE_REFUSED.source}`)) ?? []
    await ctx.page?.close()
    ctx.page = undefined
    expect(problems).toEqual([])
  })
  afterAll(async () => {
    await ctx.browser?.close()
    await ctx.proxy?.close()
    await ctx.stubs?.close()
  })
  return ctx
}

describe.skipIf(!executable)('migration console in Chromium', () => {
  const ctx = useConsole({
    FLAGS_FILE: flagsFileAt(0),
    ADMIN_HISTORY_INTERVAL_MS: '500',
    // The open breaker stays open while the test looks at it.
    BREAKER_RESET_TIMEOUT_MS: '60000',
  })


  /** Where the proxy sends a user it has never seen. */
  const sideOfNewUser = async () => (await fetch(`${ctx.baseUrl}/api/movies`, { headers: { 'x-user-id': randomUUID() } })).headers.get('x-upstream')

  it('serves the page without the token, under a strict CSP; the API behind it still needs the token', async () => {
    const res = await fetch(`${ctx.opsUrl}/admin/`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/html/)
    const csp = res.headers.get('content-security-policy') ?? ''
    expect(csp).toMatch(/default-src 'none'/)
    expect(csp).toMatch(/script-src 'self'(;|$)/)
    expect(csp).toMatch(/style-src 'self'(;|$)/)
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/)
    expect(await res.text()).not.toContain(ADMIN_TOKEN)
    expect((await fetch(`${ctx.opsUrl}/admin/state`)).status).toBe(401)
  })

  it('refuses a wrong token with a clear message and shows nothing behind it', async () => {
    ctx.page = await ConsolePage.open(ctx.browser, ctx.opsUrl)
    await ctx.page.goto()
    await ctx.page.login('not-the-admin-token-at-all')
    await expect.poll(() => ctx.page!.loginError().textContent()).toMatch(/Wrong admin token: the proxy answered 401/)
    expect(await ctx.page.dashboard().isHidden()).toBe(true)
    await ctx.page.screenshot('wrong-token')
    // The browser's own report of the refused call is expected here: the page itself raised nothing else.
    expect(ctx.page.problemsExcept(/status of 401 .*\/admin\/state\)$/)).toEqual([])
    ctx.page.problems.length = 0
  })

  it('goes back to the login, saying why, when the token stops working (e.g. rotated on the proxy)', async () => {
    ctx.page = await ConsolePage.open(ctx.browser, ctx.opsUrl)
    await ctx.page.loginAndWait(ADMIN_TOKEN)
    await ctx.page.page.evaluate(() => sessionStorage.setItem('cinemaabyss-admin-token', 'a-rotated-away-token-0000'))
    await expect.poll(() => ctx.page!.loginError().textContent(), { timeout: 10_000 }).toMatch(/^The proxy refused the token \(401\): admin API needs Authorization: Bearer <ADMIN_TOKEN or a token of ADMIN_TOKENS>\. Log in again\.$/)
    expect([await ctx.page.dashboard().isHidden(), await ctx.page.page.evaluate(() => sessionStorage.length)]).toEqual([true, 0])
    ctx.page.problems.splice(0, ctx.page.problems.length, ...ctx.page.problemsExcept(/status of 401 .*\/admin\/(state|traffic)\)$/))
  })

  it('logs in and shows the route map: prefixes, sides, rollout and its source, breakers', async () => {
    ctx.page = await ConsolePage.open(ctx.browser, ctx.opsUrl)
    await ctx.page.loginAndWait(ADMIN_TOKEN)
    expect(await ctx.page.routeNames()).toEqual(['movies', 'movies-health', 'events', 'default'])
    expect(await ctx.page.cell('movies', 'route').textContent()).toContain('/api/movies')
    expect(await ctx.page.cell('movies', 'sides').textContent()).toBe('monolith → movies-service')
    expect(await ctx.page.cell('movies', 'rollout').textContent()).toBe('0 %file')
    expect(await ctx.page.cell('events', 'sides').textContent()).toBe('events-service')
    for (const upstream of ['monolith', 'movies-service']) {
      const badge = ctx.page.breaker('movies', upstream)
      expect([await badge.getAttribute('data-state'), await badge.textContent()]).toEqual(['closed', `${upstream}: closed`])
    }
    // The token is in this tab's session storage only, never in the page's address or cookies.
    expect(await ctx.page.page.evaluate(() => [sessionStorage.length, document.cookie, location.href.includes('token')])).toEqual([1, '', false])
    await ctx.page.screenshot('routes')
  })

  it('updates the rows in place: the keyboard focus on a row\'s button survives the refreshes', async () => {
    ctx.page = await ConsolePage.open(ctx.browser, ctx.opsUrl)
    await ctx.page.loginAndWait(ADMIN_TOKEN)
    const details = ctx.page.page.getByRole('button', { name: 'Details of route events', exact: true })
    await details.focus()
    // A property of the element object itself: only the very same element carries it.
    await details.evaluate((el) => ((el as unknown as { marked: string }).marked = 'yes'))
    const before = await ctx.page.page.locator('#live').textContent()
    // Two refreshes (every 2 s) later, the same element still has the focus.
    await expect.poll(() => ctx.page!.page.locator('#live').textContent(), { timeout: 10_000 }).not.toBe(before)
    const seen = await ctx.page.page.locator('#live').textContent()
    await expect.poll(() => ctx.page!.page.locator('#live').textContent(), { timeout: 10_000 }).not.toBe(seen)
    expect(await ctx.page.page.evaluate(() => [document.activeElement?.getAttribute('aria-label'), (document.activeElement as unknown as { marked?: string } | null)?.marked])).toEqual(['Details of route events', 'yes'])
  })

  it('moves the rollout from the page: new users go where the page said', async () => {
    ctx.page = await ConsolePage.open(ctx.browser, ctx.opsUrl)
    await ctx.page.loginAndWait(ADMIN_TOKEN)
    for (let i = 0; i < 5; i++) expect(await sideOfNewUser()).toBe('monolith')
    await ctx.page.openRoute('movies')
    await ctx.page.setRollout(100, 'movies-service passed its load test')
    await expect.poll(() => ctx.page!.rolloutResult().textContent()).toMatch(/^Done/)
    await expect.poll(() => ctx.page!.cell('movies', 'rollout').textContent()).toBe('100 %file')
    for (let i = 0; i < 5; i++) expect(await sideOfNewUser()).toBe('movies-service')
    const logged = ctx.proxy.logs.lines.find((l) => (l.ledger as { to?: number } | undefined)?.to === 100)
    expect(logged?.ledger).toMatchObject({ route: 'movies', actor: 'admin', reason: 'movies-service passed its load test' })
    // The chart of the route draws the new rollout within a few history points.
    await expect.poll(() => ctx.page!.page.locator('#chart path[data-series="percent"]').count(), { timeout: 10_000 }).toBe(1)
    await ctx.page.screenshot('rollout-100')

    await ctx.page.setRollout(0, 'back to the monolith')
    await expect.poll(() => ctx.page!.cell('movies', 'rollout').textContent()).toBe('0 %file')
    for (let i = 0; i < 5; i++) expect(await sideOfNewUser()).toBe('monolith')
  })

  it('turns the target breaker red within seconds when the target dies, and shows the fallbacks', async () => {
    ctx.page = await ConsolePage.open(ctx.browser, ctx.opsUrl)
    await ctx.page.loginAndWait(ADMIN_TOKEN)
    const put = await fetch(`${ctx.opsUrl}/admin/routes/movies/rollout`, { method: 'PUT', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ percent: 100 }) })
    expect(put.status).toBe(200)
    await ctx.stubs.movies.kill()
    try {
      // Reads fall back to the monolith; five failures in a row open the breaker.
      for (let i = 0; i < 8; i++) {
        const res = await fetch(`${ctx.baseUrl}/api/movies`, { headers: { 'x-user-id': randomUUID() } })
        expect([res.status, res.headers.get('x-upstream')]).toEqual([200, 'monolith'])
      }
      const badge = ctx.page.breaker('movies', 'movies-service')
      await expect.poll(() => badge.getAttribute('data-state'), { timeout: 10_000 }).toBe('open')
      expect(await badge.textContent()).toBe('movies-service: open')
      expect(await badge.evaluate((el) => getComputedStyle(el).color)).toBe('rgb(185, 28, 28)') // red
      expect(await ctx.page.breaker('movies', 'monolith').getAttribute('data-state')).toBe('closed')
      expect(Number(await ctx.page.cell('movies', 'fallbacks').textContent())).toBeGreaterThan(0)
      // The requests meant for the target that failed over are its errors (the earlier tests' requests to it all succeeded).
      const targetErrors = async () => Number(/· ([\d.]+)\s%$/.exec((await ctx.page!.cell('movies', 'errors').textContent()) ?? '')?.[1] ?? 0)
      await expect.poll(targetErrors).toBeGreaterThan(50)
      expect(await ctx.page.tableFits()).toBe(true) // at 1280 px, with its widest content
      await ctx.page.openRoute('movies')
      await expect.poll(() => ctx.page!.page.locator('#chart path[data-series="targetErrorPercent"]').count(), { timeout: 10_000 }).toBe(1)
      await ctx.page.screenshot('target-down')
    } finally {
      await ctx.stubs.movies.restart()
      await fetch(`${ctx.opsUrl}/admin/routes/movies/rollout`, { method: 'PUT', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ percent: 0 }) })
    }
  })

  it('works at phone width: no sideways scrolling, every control labelled, reachable by keyboard', async () => {
    ctx.page = await ConsolePage.open(ctx.browser, ctx.opsUrl, PHONE)
    await ctx.page.goto()
    // Keyboard only: the token field has the focus on arrival, Enter logs in.
    await eventually('the token field to be focused', async () => (await ctx.page!.page.evaluate(() => document.activeElement?.id)) === 'token', 5_000)
    await ctx.page.page.keyboard.type(ADMIN_TOKEN)
    await ctx.page.page.keyboard.press('Enter')
    await ctx.page.routeRow('default').waitFor()
    await ctx.page.openRoute('movies')
    const widths = await ctx.page.page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth])
    expect(widths[0]).toBeLessThanOrEqual(widths[1])
    const unlabelled = await ctx.page.page.evaluate(() =>
      [...document.querySelectorAll('input, select')].filter((el) => (el as HTMLInputElement).labels?.length === 0 && !el.getAttribute('aria-label')).map((el) => el.id),
    )
    expect(unlabelled).toEqual([])
    const nameless = await ctx.page.page.evaluate(() => [...document.querySelectorAll('button')].filter((b) => !b.hidden && (b.textContent ?? '').trim() === '' && !b.getAttribute('aria-label')).length)
    expect(nameless).toBe(0)
    await ctx.page.screenshot('phone')
  })
})

// Steering through shadow comparison, guarded ramps and the ledger, on a proxy of its own (its
// breakers and ramps untouched by the tests above).
describe.skipIf(!executable)('migration console in Chromium: shadow, ramps and the ledger', () => {
  const ctx = useConsole({ FLAGS_FILE: flagsFileAt(0), ADMIN_HISTORY_INTERVAL_MS: '500', RAMP_TICK_MS: '200' })

  const done = async (p: ConsolePage) => {
    await expect.poll(() => p.rampResult().textContent()).toMatch(/^(Done|Refused)/)
    const text = (await p.rampResult().textContent())!
    await p.rampResult().evaluate((el) => (el.textContent = ''))
    return text
  }

  it('steers a ramp (start, pause, resume, roll back) and the ledger lists each action with the reason typed in', async () => {
    ctx.page = await ConsolePage.open(ctx.browser, ctx.opsUrl)
    await ctx.page.loginAndWait(ADMIN_TOKEN)
    await ctx.page.openRoute('movies')
    await expect.poll(() => ctx.page!.page.locator('#ramp-state').textContent()).toMatch(/No ramp on this route/)
    const sent = async (method: string, url: string) => {
      await expect.poll(() => ctx.page!.calls.some((c) => c.method === method && c.url === url)).toBe(true)
      return ctx.page!.calls.filter((c) => c.method === method && c.url === url).at(-1)!.body
    }

    await ctx.page.rampAction('Start ramp', 'target matches on the shadow', 'standard')
    expect(await sent('PUT', '/admin/routes/movies/ramp')).toEqual({
      steps: [5, 25, 50, 100],
      intervalSeconds: 300,
      maxErrorRatePercent: 1,
      maxMismatchRatePercent: 0.5,
      maxLatencyRatio: 1.5,
      minRequests: 100,
      reason: 'target matches on the shadow',
    })
    expect(await done(ctx.page)).toMatch(/^Done/)
    await expect.poll(() => ctx.page!.cell('movies', 'rollout').textContent()).toBe('5 %file')
    await ctx.page.rampAction('Pause', 'holding over the match')
    expect(await done(ctx.page)).toMatch(/^Done/)
    await expect.poll(() => ctx.page!.page.locator('#ramp-state').textContent()).toMatch(/paused/)
    await ctx.page.rampAction('Resume', 'match is over')
    expect(await done(ctx.page)).toMatch(/^Done/)
    await ctx.page.rampAction('Roll back to 0 %', 'p99 doubled')
    expect(await sent('POST', '/admin/routes/movies/rollback')).toEqual({ reason: 'p99 doubled' })
    expect(await done(ctx.page)).toMatch(/^Done/)
    await expect.poll(() => ctx.page!.cell('movies', 'rollout').textContent()).toBe('0 %file')

    await ctx.page.filterLedger('movies')
    const reasons = () => ctx.page!.page.locator('#ledger tbody [data-col="reason"]').allTextContents()
    await expect.poll(reasons).toEqual([
      'rollback: p99 doubled',
      'ramp resumed at 5 %: match is over',
      'ramp paused at 5 %: holding over the match',
      'ramp started: step 1 of 4 (target matches on the shadow)',
    ])
    await ctx.page.screenshot('ledger')
  })

  it('shows the data parity of a split route: unknown (with the reason) when a side serves no parity digest, never 0', async () => {
    ctx.page = await ConsolePage.open(ctx.browser, ctx.opsUrl)
    await ctx.page.loginAndWait(ADMIN_TOKEN)
    await ctx.page.openRoute('movies')
    // The stubs answer {"upstream": ...} to every path: not a parity summary.
    await ctx.page.page.locator('#parity-check').click()
    await expect.poll(() => ctx.page!.page.locator('#parity-state').textContent(), { timeout: 10_000 }).toMatch(/^Data parity: unknown — monolith: the parity summary is not/)
    await ctx.page.openRoute('events')
    await expect.poll(() => ctx.page!.page.locator('#parity-state').textContent()).toBe('This route has one store: nothing to compare.')
    expect(await ctx.page.page.locator('#parity-check').isVisible()).toBe(false)
  })

  it('shows a ramp over a mismatching target rolled back by the guard, with the reason, and the diffs', async () => {
    ctx.page = await ConsolePage.open(ctx.browser, ctx.opsUrl)
    await ctx.page.loginAndWait(ADMIN_TOKEN)
    await ctx.page.openRoute('movies')
    // The stubs answer {"upstream": <their name>, ...}: every comparison differs at $.upstream.
    await ctx.page.setShadow(100, '')
    await expect.poll(async () => (await fetch(`${ctx.opsUrl}/admin/routes/movies/diffs`, { headers: admin }).then((r) => r.json())).shadow?.percent).toBe(100)
    await ctx.page.rampAction('Start ramp', 'quick try on staging', 'quick')
    expect(await done(ctx.page)).toMatch(/^Done/)
    await eventually(
      'the guard rolled the ramp back',
      async () => {
        for (let i = 0; i < 20; i++) await fetch(`${ctx.baseUrl}/api/movies`, { headers: { 'x-user-id': randomUUID() } })
        const ramp = await fetch(`${ctx.opsUrl}/admin/routes/movies/ramp`, { headers: admin }).then((r) => r.json())
        return ramp.state === 'rolled_back'
      },
      30_000,
    )
    await expect.poll(() => ctx.page!.page.locator('#ramp-state').textContent(), { timeout: 10_000 }).toMatch(/rolled back.*shadow mismatch rate [\d.]+ % > limit 1 %/)
    // The ramp panel and the routes table come from different reads: the table may still show
    // 10 % until the page's next refresh (POLL_MS, 2 s), past expect.poll's default 1 s (it
    // failed so once in a full run on the loaded machine).
    await expect.poll(() => ctx.page!.cell('movies', 'rollout').textContent(), { timeout: 10_000 }).toBe('0 %file')
    // The diffs one click away: both sides' values at the differing JSON path.
    await expect.poll(() => ctx.page!.page.locator('#diffs-list td code').allTextContents(), { timeout: 10_000 }).toEqual(expect.arrayContaining(['$.upstream', '"monolith"', '"movies-service"']))
    await ctx.page.screenshot('ramp-rolled-back')
  })

  it("shows each split route's stage; a guarded step is a button that shows the guard's refusal; the ledger shows the stage change", async () => {
    ctx.page = await ConsolePage.open(ctx.browser, ctx.opsUrl)
    await ctx.page.loginAndWait(ADMIN_TOKEN)
    await expect.poll(() => ctx.page!.cell('movies', 'stage').textContent()).toMatch(/^writes legacy · drift \? · lag \? · 0 RYW · stores unknown$/)
    expect(await ctx.page.cell('events', 'stage').textContent()).toBe('—')
    await ctx.page.openRoute('movies')
    const result = ctx.page.page.locator('#stage-result')
    // The stubs serve no parity digest: the parity guard cannot say, and the step is refused, naming it.
    await ctx.page.stageAction('Writes to the target', 'catalog-db backfilled')
    await expect.poll(() => result.textContent(), { timeout: 10_000 }).toMatch(/^Refused \(409\): refused by the parity guard: unknown \(monolith: the parity summary is not/)
    await ctx.page.stageAction('Writes to the target', 'staging: no parity endpoint on the stubs', true)
    await expect.poll(() => result.textContent(), { timeout: 10_000 }).toMatch(/^Done \(PUT \/admin\/routes\/movies\/writes\)/)
    await expect.poll(() => ctx.page!.cell('movies', 'stage').textContent(), { timeout: 10_000 }).toMatch(/^writes target · /)
    await expect.poll(() => ctx.page!.page.locator('#stage-state').textContent(), { timeout: 10_000 }).toMatch(/^writes target · .* · reads 0 %$/)
    await ctx.page.filterLedger('movies')
    await expect.poll(() => ctx.page!.page.locator('#ledger tbody [data-stage="writes"]').first().textContent(), { timeout: 10_000 }).toMatch(/^writes legacy → target FORCED \[parity unavailable, why monolith: /)
    // Retiring needs reads at 100 %: refused with the reason.
    await ctx.page.stageAction('Retire legacy', 'too early')
    await expect.poll(() => result.textContent(), { timeout: 10_000 }).toMatch(/^Refused \(409\): reads of route "movies" are at 0 %, not 100 % on the target/)
    await ctx.page.screenshot('stage')
    // Back as it was for the other tests of this proxy.
    await ctx.page.stageAction('Writes back to legacy', 'end of the console test', true)
    await expect.poll(() => result.textContent(), { timeout: 10_000 }).toMatch(/^Done/)
  })

  it('lists the learned shadow noise (when, confirmations, expiry), resets it with a click, and the ledger shows each shadow change with its actor', async () => {
    // Legacy's x-served-at differs in every answer: noise the detector learns once 2 requests confirmed it.
    let served = 0
    ctx.stubs.monolith.responseHeaders = Object.defineProperty({}, 'x-served-at', { enumerable: true, get: () => String(++served) })
    const shadow = (payload: object) => fetch(`${ctx.opsUrl}/admin/routes/movies/shadow`, { method: 'PUT', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify(payload) })
    try {
      expect((await shadow({ percent: 100, compareHeaders: ['x-served-at'], detectNoise: true, noiseConfirmations: 2, reason: 'noise on' })).status).toBe(200)
      ctx.page = await ConsolePage.open(ctx.browser, ctx.opsUrl)
      await ctx.page.loginAndWait(ADMIN_TOKEN)
      await ctx.page.openRoute('movies')
      await expect.poll(() => ctx.page!.page.locator('#noise-state').textContent(), { timeout: 10_000 }).toMatch(/^Noise detection on: a leaf needs 2 different requests within 600 s, and is learned for 3600 s\. Nothing learned\./)
      const learned = async () => (await fetch(`${ctx.opsUrl}/admin/routes/movies/shadow`, { headers: admin }).then((r) => r.json())).learnedNoise.length === 1
      await eventually('the noise learned', async () => {
        await fetch(`${ctx.baseUrl}/api/movies`, { headers: { 'x-user-id': randomUUID() } })
        return learned()
      })
      const rows = ctx.page.page.locator('#noise tbody tr')
      await expect.poll(() => rows.locator('td code').allTextContents(), { timeout: 10_000 }).toEqual(['header:x-served-at'])
      expect(await rows.locator('[data-col="confirmations"]').textContent()).toBe('2')
      await ctx.page.screenshot('learned-noise')
      await ctx.page.page.getByRole('button', { name: 'Reset learned noise' }).click()
      await expect.poll(() => ctx.page!.page.locator('#noise-result').textContent(), { timeout: 10_000 }).toBe('Done (DELETE /admin/routes/movies/shadow/noise)')
      expect(ctx.page.calls.some((c) => c.method === 'DELETE' && c.url === '/admin/routes/movies/shadow/noise')).toBe(true)
      await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(0)
      await ctx.page.filterLedger('movies')
      const shadowRows = ctx.page.page.locator('#ledger tbody tr:has([data-stage="shadow"])')
      await expect.poll(() => shadowRows.count(), { timeout: 10_000 }).toBeGreaterThanOrEqual(3)
      const texts = await Promise.all((await shadowRows.all()).slice(0, 3).map(async (row) => [await row.locator('[data-label="Change"]').textContent(), await row.locator('[data-label="Actor"]').textContent()]))
      expect(texts).toEqual([
        ['shadow noise reset: header:x-served-at', 'admin'],
        ['shadow noise learned: header:x-served-at', 'shadow'],
        [expect.stringMatching(/^shadow \d+ % → 100 %, noise detection on$/), 'admin'],
      ])
    } finally {
      ctx.stubs.monolith.responseHeaders = {}
      await shadow({ percent: 0, compareHeaders: [], detectNoise: false, reason: 'end of the console test' })
    }
  })
})
