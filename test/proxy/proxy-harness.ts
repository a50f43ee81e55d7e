// Builds the proxy in-process for tests, against stub upstreams, with a flags file of its own.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { buildApp, type ProxyDeps } from '../../proxy/app.ts'
import { loadConfig } from '../../proxy/config.ts'
import { REPO_ROOT } from '../helpers/processes.ts'
import { captureLogs, type CapturedLogs } from '../helpers/logs.ts'
import { startStubUpstream, type StubUpstream } from './stub-upstream.ts'

export const ADMIN_TOKEN = 'test-admin-token-0123456789'

/** A copy of the shipped flags/flags.json with movies-migration at `percent`, in a temp directory. */
export function flagsFileAt(percent: number, dir = mkdtempSync(join(tmpdir(), 'proxy-flags-'))): string {
  const file = join(dir, 'flags.json')
  writeFlagsFile(file, percent)
  return file
}

export function writeFlagsFile(file: string, percent: number): void {
  const doc = JSON.parse(readFileSync(join(REPO_ROOT, 'flags/flags.json'), 'utf8'))
  doc.featureStrategies[0].parameters.rollout = String(percent)
  writeFileSync(file, JSON.stringify(doc, null, 2))
}

export interface Stubs {
  monolith: StubUpstream
  movies: StubUpstream
  events: StubUpstream
  close(): Promise<void>
}

export async function startStubs(): Promise<Stubs> {
  const [monolith, movies, events] = await Promise.all([startStubUpstream('monolith'), startStubUpstream('movies-service'), startStubUpstream('events-service')])
  return { monolith, movies, events, close: async () => void (await Promise.all([monolith.close(), movies.close(), events.close()])) }
}

export interface ProxyUnderTest {
  app: FastifyInstance
  logs: CapturedLogs
  flagsFile: string
  close(): Promise<void>
}

export async function startProxy(stubs: Stubs, env: Record<string, string> = {}, deps: Partial<ProxyDeps> = {}): Promise<ProxyUnderTest> {
  const flagsFile = env.FLAGS_FILE ?? flagsFileAt(30)
  const config = loadConfig({
    MONOLITH_URL: stubs.monolith.url,
    MOVIES_SERVICE_URL: stubs.movies.url,
    EVENTS_SERVICE_URL: stubs.events.url,
    FLAGS_FILE: flagsFile,
    ADMIN_TOKEN,
    RATE_LIMIT_MAX: '0', // the rate-limit tests set their own
    ...env,
  })
  const logs = captureLogs()
  const app = await buildApp(config, { logger: logs.logger, ...deps })
  return { app, logs, flagsFile, close: () => app.close() }
}

export const admin = { authorization: `Bearer ${ADMIN_TOKEN}` }

/** Polls `check` until it returns true, bounded; for changes that take effect asynchronously. */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`)
}

/** One metric sample from /metrics text, e.g. metric(text, 'proxy_breaker_state{upstream="movies-service"}'). */
export function metric(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}
