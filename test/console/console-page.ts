// The migration console as a test drives it (a page object): one browser context per
// ConsolePage, console errors and CSP violations collected from the moment the page opens,
// screenshots under test-results/console/. Tests say what a person does (log in, open a
// route, set a rollout) and read what a person sees; the selectors live here only.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core'
import { REPO_ROOT } from '../helpers/processes.ts'

export const SCREENSHOTS = join(REPO_ROOT, 'test-results', 'console')

export const DESKTOP = { width: 1280, height: 900 }
export const PHONE = { width: 390, height: 844 }

export class ConsolePage {
  /** Console errors, uncaught page errors and CSP violations, in order. */
  readonly problems: string[] = []
  /** The admin API calls the page made (fetch), in order: method, path and query, JSON body. */
  readonly calls: Array<{ method: string; url: string; body: unknown }> = []

  readonly context: BrowserContext
  readonly page: Page
  readonly baseUrl: string

  private constructor(context: BrowserContext, page: Page, baseUrl: string) {
    this.context = context
    this.page = page
    this.baseUrl = baseUrl
    page.on('console', (msg) => {
      if (msg.type() === 'error' || msg.type() === 'warning') this.problems.push(`console.${msg.type()}: ${msg.text()} (${msg.location().url})`)
    })
    page.on('pageerror', (error) => this.problems.push(`page error: ${error.message}`))
    page.on('request', (request) => {
      const url = new URL(request.url())
      const body = request.postData()
      if (request.resourceType() === 'fetch') this.calls.push({ method: request.method(), url: url.pathname + url.search, body: body ? JSON.parse(body) : undefined })
    })
  }

  /**
   * The problems, less the browser's report of an HTTP error status the page expected and
   * handled (Chromium logs every failed fetch as a console error, with its URL).
   */
  problemsExcept(expected: RegExp): string[] {
    return this.problems.filter((p) => !(/Failed to load resource: the server responded with a status of \d+/.test(p) && expected.test(p)))
  }

  static async open(browser: Browser, baseUrl: string, viewport = DESKTOP): Promise<ConsolePage> {
    const context = await browser.newContext({ viewport })
    const page = await context.newPage()
    const consolePage = new ConsolePage(context, page, baseUrl)
    // CSP violations also reach the console as errors; this catches those Chromium reports only as events.
    await page.exposeFunction('__reportCsp', (text: string) => consolePage.problems.push(`CSP violation: ${text}`))
    await page.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => (window as unknown as { __reportCsp(t: string): void }).__reportCsp(`${e.violatedDirective} blocked ${e.blockedURI}`))
    })
    return consolePage
  }

  async goto(): Promise<void> {
    const res = await this.page.goto(`${this.baseUrl}/admin/`)
    if (!res?.ok()) throw new Error(`GET /admin/ answered ${res?.status()}`)
  }

  async login(token: string): Promise<void> {
    await this.page.getByLabel('Admin token').fill(token)
    await this.page.getByRole('button', { name: 'Log in' }).click()
  }

  /** Logs in and waits for the routes table. */
  async loginAndWait(token: string): Promise<void> {
    await this.goto()
    await this.login(token)
    await this.routeRow('default').waitFor()
  }

  loginError(): Locator {
    return this.page.locator('#login-error')
  }

  dashboard(): Locator {
    return this.page.locator('#dashboard')
  }

  routeRow(name: string): Locator {
    return this.page.locator(`#routes tbody tr[data-route="${name}"]`)
  }

  async routeNames(): Promise<string[]> {
    return this.page.locator('#routes tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-route') ?? ''))
  }

  cell(route: string, col: string): Locator {
    return this.routeRow(route).locator(`[data-col="${col}"]`)
  }

  breaker(route: string, upstream: string): Locator {
    return this.cell(route, 'breakers').locator(`[data-upstream="${upstream}"]`)
  }

  /** The routes table fits its box (no sideways scrolling inside it). */
  tableFits(): Promise<boolean> {
    return this.page.locator('#routes').evaluate((table) => table.parentElement!.scrollWidth <= table.parentElement!.clientWidth)
  }

  async openRoute(name: string): Promise<void> {
    await this.page.getByRole('button', { name: `Details of route ${name}`, exact: true }).click()
    await this.page.locator('#detail').waitFor()
  }

  async setRollout(percent: number, reason: string): Promise<void> {
    await this.page.getByLabel('Percent of users on the target').fill(String(percent))
    await this.page.getByLabel('Reason for the change').fill(reason)
    await this.page.getByRole('button', { name: 'Set rollout' }).click()
  }

  /** A ramp button (start with a template, pause, resume, rollback), with the reason typed in first. */
  async rampAction(action: 'Start ramp' | 'Pause' | 'Resume' | 'Roll back to 0 %', reason: string, template?: 'standard' | 'cautious' | 'quick'): Promise<void> {
    if (template) await this.page.getByLabel('Template').selectOption(template)
    await this.page.getByLabel('Reason for the ramp action').fill(reason)
    await this.page.getByRole('button', { name: action, exact: true }).click()
  }

  /** A stage button (the writer side, retirement), with the reason typed in and "force" ticked or not. */
  async stageAction(action: 'Writes to the target' | 'Writes back to legacy' | 'Retire legacy', reason: string, force = false): Promise<void> {
    await this.page.getByLabel('Reason for the step').fill(reason)
    await this.page.getByLabel('Force past a refusing guard').setChecked(force)
    await this.page.getByRole('button', { name: action, exact: true }).click()
  }

  rampResult(): Locator {
    return this.page.locator('#ramp-result')
  }

  async setShadow(percent: number, ignore: string): Promise<void> {
    await this.page.getByLabel('Shadow percent').fill(String(percent))
    await this.page.getByLabel('Ignored JSON paths').fill(ignore)
    await this.page.getByRole('button', { name: 'Set shadow' }).click()
  }

  async filterLedger(route: string): Promise<void> {
    await this.page.getByLabel('Route', { exact: true }).selectOption(route)
  }

  rolloutResult(): Locator {
    return this.page.locator('#rollout-result')
  }

  async screenshot(name: string): Promise<string> {
    mkdirSync(SCREENSHOTS, { recursive: true })
    const path = join(SCREENSHOTS, `${name}.png`)
    await this.page.screenshot({ path, fullPage: true })
    return path
  }

  close(): Promise<void> {
    return this.context.close()
  }
}
