// Builds the proxy in-process for tests, against stub upstreams, with a flags file of its own.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { buildApp, type ProxyDeps } from '../../proxy/app.ts'
import { loadConfig } from '../../proxy/config.ts'
import { REPO_ROOT } from '../helpers/processes.ts'
import { captureLogs, type CapturedLogs } from '../helpers/logs.ts'
import { startStubUpstream, type StubUpstream } from './stub-upstream.ts'

// Random per run: no token that anyone else knows, and the proxy refuses weak ones (proxy/config.ts).
export const ADMIN_TOKEN = `test-${randomBytes(24).toString('base64url')}`

/** Rollout percent per flag name; a bare number is the shipped movies-migration flag's. */
export type Rollouts = number | Record<string, number>

/** A copy of the shipped flags/flags.json with the given rollouts, in a temp directory. */
export function flagsFileAt(rollouts: Rollouts, dir = mkdtempSync(join(tmpdir(), 'proxy-flags-'))): string {
  const file = join(dir, 'flags.json')
  writeFlagsFile(file, rollouts)
  return file
}

/**
 * Writes the shipped flags file with each named flag's flexibleRollout set to its percent; a
 * flag the shipped file lacks is added (defined, enabled, one sticky rollout strategy), as a
 * migration team adds the flag of a new route.
 */
export function writeFlagsFile(file: string, rollouts: Rollouts): void {
  const doc = JSON.parse(readFileSync(join(REPO_ROOT, 'flags/flags.json'), 'utf8'))
  for (const [flag, percent] of Object.entries(typeof rollouts === 'number' ? { 'movies-migration': rollouts } : rollouts)) {
    let strategy = doc.featureStrategies.find((s: { featureName: string }) => s.featureName === flag)
    if (!strategy) {
      doc.features.push({ name: flag, type: 'release', project: 'default', stale: false, impressionData: false, archived: false })
      doc.featureEnvironments.push({ enabled: true, featureName: flag, environment: doc.featureEnvironments[0].environment, variants: [], name: flag })
      strategy = { name: 'flexibleRollout', featureName: flag, title: null, parameters: { groupId: flag, stickiness: 'default' }, constraints: [], variants: [], disabled: false, segments: [] }
      doc.featureStrategies.push(strategy)
    }
    strategy.parameters.rollout = String(percent)
  }
  writeFileSync(file, JSON.stringify(doc, null, 2))
}

/**
 * A copy of the shipped route map in which the movies route's stores do not decide who writes
 * (no `writer`): for stacks where both services run on ONE database (the shape before catalog-db),
 * where there is nothing to hand writes between and the flag, or X-Backend, picks the side of a
 * write as it did before writer stores existed.
 */
export function routesFileWithoutWriter(): string {
  const routes = JSON.parse(readFileSync(join(REPO_ROOT, 'proxy/routes.json'), 'utf8'))
  delete routes.routes.find((r: { name: string }) => r.name === 'movies').writer
  const file = join(mkdtempSync(join(tmpdir(), 'proxy-routes-')), 'routes.json')
  writeFileSync(file, JSON.stringify(routes))
  return file
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
  /** The public listener's app: the routes, a bare /health and /ready. */
  app: FastifyInstance
  /** The operators' listener's app: /admin, the console, /metrics, /documentation/json, the detailed /ready. */
  ops: FastifyInstance
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
    ADMIN_AUTH_FAILURES_MAX: '100', // tests check many refusals from 127.0.0.1; the back-off has its own test
    METRICS_MIN_INTERVAL_MS: '0', // tests read /metrics right after what they count; the cache has its own test
    ...env,
  })
  const logs = captureLogs()
  const { app, ops } = await buildApp(config, { logger: logs.logger, ...deps })
  // Closing the public app closes the operators' one too (proxy/app.ts).
  return { app, ops, logs, flagsFile, close: () => app.close() }
}

export const admin = { authorization: `Bearer ${ADMIN_TOKEN}` }
