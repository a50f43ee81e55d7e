// `npm start`: the whole system in one Node process on a bare machine. Monolith, movies
// service, events service and proxy run on their usual ports; PostgreSQL, Kafka, Redis and
// Unleash are the real ones when their variables are set and embedded otherwise
// (dev/start/embedded.ts). Ctrl-C stops everything, services first, then infrastructure.
import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { buildApp as buildEvents } from '../../events-service/app.ts'
import { loadConfig as eventsConfig } from '../../events-service/config.ts'
import { createLogger } from '../../lib/logger.ts'
import { pgRelayDeps } from '../../lib/outbox/pg-relay.ts'
import { buildApp as buildMonolith } from '../../monolith/app.ts'
import { loadConfig as monolithConfig } from '../../monolith/config.ts'
import { buildApp as buildMovies } from '../../movies-service/app.ts'
import { loadConfig as moviesConfig } from '../../movies-service/config.ts'
import { buildApp as buildProxy } from '../../proxy/app.ts'
import { loadConfig as proxyConfig } from '../../proxy/config.ts'
import { REPO_ROOT } from '../paths.ts'
import { loadStartConfig, type StartConfig } from './config.ts'
import { flagsFile, openDatabase, openKafka, openRedis, type Piece } from './embedded.ts'
import { printBanner } from './banner.ts'
import { createProgress } from './progress.ts'

let config: StartConfig
let adminToken: string
try {
  config = loadStartConfig()
  // A fresh random token each run unless one is given: never a token anyone else knows.
  adminToken = config.adminToken ?? randomBytes(24).toString('base64url')
} catch (error) {
  console.error(`npm start: ${(error as Error).message}`)
  process.exit(1)
}

const log = createLogger({ level: config.logLevel, name: 'start' })
const progress = createProgress()
const loggerFor = (name: string) => createLogger({ level: config.logLevel, name })
const pieces: Array<Piece<unknown>> = []
const apps: FastifyInstance[] = []
// One INTERNAL_TOKEN for every process of this stack (the user's, else a new one): the proxy's
// parity calls carry it and the services' /internal answers nothing else (lib/http/internal-auth.ts).
const internalToken = process.env.INTERNAL_TOKEN || randomBytes(32).toString('hex')
// Service env: what the user set (so any tuning variable still works), with ports and URLs of this stack on top.
const serviceEnv = (port: number, extra: Record<string, string | undefined> = {}) => ({
  ...process.env,
  PORT: String(port),
  HOST: config.host,
  LOG_LEVEL: config.logLevel,
  INTERNAL_TOKEN: internalToken,
  ...extra,
})

/** The proxy's environment in this stack: the services' URLs, the flags file and the admin token. */
function proxyEnvFor(ports: StartConfig['ports'], flagsPath: string | undefined) {
  return serviceEnv(ports.proxy, {
    MONOLITH_URL: `http://127.0.0.1:${ports.monolith}`,
    MOVIES_SERVICE_URL: `http://127.0.0.1:${ports.movies}`,
    EVENTS_SERVICE_URL: `http://127.0.0.1:${ports.events}`,
    FLAGS_FILE: flagsPath,
    ADMIN_TOKEN: adminToken,
    // The operators' listener stays on loopback whatever HOST says.
    ADMIN_HOST: '127.0.0.1',
    ADMIN_PORT: String(ports.admin),
  })
}

// The proxy's own variables (ADMIN_TOKEN, BREAKER_*, RATE_LIMIT_*, …) are checked before anything
// starts: a bad one stops npm start at once, named, not after the databases are up.
try {
  proxyConfig(proxyEnvFor(config.ports, config.flagsFile))
} catch (error) {
  console.error(`npm start: ${(error as Error).message}`)
  process.exit(1)
}

async function listen(name: string, app: FastifyInstance, port: number): Promise<void> {
  apps.unshift(app) // closed in reverse order of start: the proxy first
  await app.listen({ port, host: config.host })
  progress(`${name} listening on http://${config.host === '0.0.0.0' ? 'localhost' : config.host}:${port}`)
}

async function stopAll(): Promise<void> {
  for (const app of apps.splice(0)) await app.close().catch((err) => log.error({ err }, 'closing a service failed'))
  for (const piece of pieces.splice(0).reverse()) await piece.stop().catch((err) => log.error({ err }, 'stopping a dependency failed'))
}

// Ctrl-C reaches this process twice under `npm start` (the terminal signals the whole process
// group, and npm forwards it again), so a repeated signal must not cut the clean stop short.
let stopping: Promise<void> | undefined
function shutdown(reason: string, code: number): void {
  if (stopping) return
  console.log(`\n${reason}: stopping…`)
  const force = setTimeout(() => {
    console.error('did not stop within 15 s, exiting anyway')
    process.exit(1)
  }, 15_000)
  force.unref()
  stopping = stopAll().then(() => process.exit(code))
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => shutdown(signal, 0))
process.on('uncaughtException', (err) => {
  log.fatal({ err }, 'uncaught exception')
  shutdown('fatal error', 1)
})

try {
  const { ports } = config
  const flags = flagsFile(config, REPO_ROOT)
  pieces.push(flags)
  const redis = openRedis(config, log)
  pieces.push(redis)
  // Kafka (a JVM) starts while the database is migrated and the HTTP services come up.
  const kafkaStarting = openKafka(config, log, progress)
  kafkaStarting.catch(() => {}) // awaited below; avoid an unhandled rejection meanwhile
  // Two stores, as in production: legacy-db for the monolith, catalog-db for the movies service
  // (kept in step through Kafka's movie-state topic).
  const db = await openDatabase(config, progress, 'legacy')
  pieces.push(db)
  const catalogDb = await openDatabase(config, progress, 'catalog')
  pieces.push(catalogDb)

  // The outbox relays of the monolith and the movies service publish to the same Kafka; they
  // start before it is up (the outbox keeps the events meanwhile). PGlite has no LISTEN
  // across its callers here, so its relays poll often; real PostgreSQL wakes them by NOTIFY.
  const outboxEnv = {
    KAFKA_BROKERS: config.kafkaBrokers ?? `127.0.0.1:${ports.kafka}`,
  }
  const pollFor = (url: string | undefined) => process.env.OUTBOX_POLL_INTERVAL_MS ?? (url ? undefined : '200')
  const outboxFor = (name: string, url: string | undefined, service: { dbConnectTimeoutMs: number; dbStatementTimeoutMs: number }) =>
    url ? pgRelayDeps({ ...service, databaseUrl: url }, loggerFor(name)) : {}
  const monolith = monolithConfig(serviceEnv(ports.monolith, { ...outboxEnv, OUTBOX_POLL_INTERVAL_MS: pollFor(config.databaseUrl) }))
  await listen(
    'monolith',
    buildMonolith(monolith, { db: db.value, logger: loggerFor('monolith'), outbox: outboxFor('monolith', config.databaseUrl, monolith) }),
    ports.monolith,
  )
  const movies = moviesConfig(serviceEnv(ports.movies, { ...outboxEnv, OUTBOX_POLL_INTERVAL_MS: pollFor(config.catalogDatabaseUrl) }))
  const moviesCache = redis.value({ keyPrefix: movies.cacheKeyPrefix, commandTimeoutMs: movies.cacheTimeoutMs })
  await listen(
    'movies-service',
    buildMovies(movies, { db: catalogDb.value, logger: loggerFor('movies-service'), redis: moviesCache, outbox: outboxFor('movies-service', config.catalogDatabaseUrl, movies) }),
    ports.movies,
  )
  const proxy = proxyConfig(proxyEnvFor(ports, flags.value))
  const rateLimitCounters = redis.value({ commandTimeoutMs: proxy.redisTimeoutMs })
  const proxyApps = await buildProxy(proxy, { logger: loggerFor('proxy'), redis: rateLimitCounters })
  // Closing the public app closes the operators' one (proxy/app.ts): only the public one is stopped here.
  await proxyApps.ops.listen({ port: proxy.adminPort, host: proxy.adminHost })
  progress(`proxy operators' listener on http://${proxy.adminHost}:${proxy.adminPort}`)
  await listen('proxy', proxyApps.app, ports.proxy)

  const kafka = await kafkaStarting
  pieces.push(kafka)
  await listen('events-service', buildEvents(eventsConfig(serviceEnv(ports.events, { KAFKA_BROKERS: kafka.value.join(',') })), { logger: loggerFor('events-service') }), ports.events)

  printBanner({ config, adminToken, flagsFile: flags.value, pieces: { db, catalogDb, kafka, redis } })
} catch (error) {
  console.error(`\nnpm start failed: ${(error as Error).message}`)
  await stopAll()
  process.exit(1)
}
