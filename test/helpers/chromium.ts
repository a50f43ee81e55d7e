// Chromium for page tests: Debian's `chromium` (installed by .ci/run) driven by playwright-core.
// CHROMIUM_PATH overrides where it is looked for. When none is found the page tests skip with
// this module's message (CI always has one).
import { existsSync } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'

const CANDIDATES = ['/usr/lib/chromium/chromium', '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome']

export function findChromium(): string | undefined {
  const given = process.env.CHROMIUM_PATH
  if (given) return existsSync(given) ? given : undefined
  return CANDIDATES.find((path) => existsSync(path))
}

export const NO_CHROMIUM = `no Chromium found (looked at ${process.env.CHROMIUM_PATH ?? CANDIDATES.join(', ')}): install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH; the browser tests are skipped`

/** Headless; root (CI) needs --no-sandbox. The caller closes it (afterAll). */
export function launchChromium(executablePath: string): Promise<Browser> {
  return chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'], timeout: 60_000 })
}
