// `npm start` configuration: where each service listens and which infrastructure is real.
// Every infrastructure variable that is unset means "embed it" (see README, npm start).
import { env, envVarNames, parseEnv } from '../../lib/config.ts'

const spec = {
  basePort: env.int('START_BASE_PORT', 8000, {
    min: 1,
    max: 65535 - 1092,
    description: "proxy on BASE, its operators' listener BASE+1000, monolith BASE+80, movies BASE+81, events BASE+82, embedded Kafka BASE+1092",
  }),
  proxyPort: env.optionalPort('PROXY_PORT', 'overrides the proxy port'),
  adminPort: env.optionalPort('ADMIN_PORT', "overrides the port of the proxy's operators' listener (admin API, console, metrics; always on 127.0.0.1)"),
  monolithPort: env.optionalPort('MONOLITH_PORT', 'overrides the monolith port'),
  moviesPort: env.optionalPort('MOVIES_PORT', 'overrides the movies-service port'),
  eventsPort: env.optionalPort('EVENTS_PORT', 'overrides the events-service port'),
  kafkaPort: env.optionalPort('KAFKA_PORT', 'overrides the embedded Kafka port'),
  host: env.string('HOST', '127.0.0.1', 'interface every service listens on'),
  logLevel: env.oneOf('LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'warn', 'log level of every service'),
  databaseUrl: env.optionalUrl(['DB_CONNECTION_STRING', 'DATABASE_URL'], 'real PostgreSQL; unset = embedded PGlite', ['postgres', 'postgresql']),
  catalogDatabaseUrl: env.optionalUrl('CATALOG_DB_CONNECTION_STRING', 'real PostgreSQL for catalog-db (the movies service\'s own database); unset = a second embedded PGlite', ['postgres', 'postgresql']),
  pgliteDataDir: env.optionalString('PGLITE_DATA_DIR', 'keep the embedded databases on disk: legacy-db here, catalog-db in the same path with "-catalog" appended; unset = in memory'),
  kafkaBrokers: env.optionalString('KAFKA_BROKERS', 'real Kafka; unset = a local broker started with dev/kafka'),
  kafkaDataDir: env.optionalString('KAFKA_DATA_DIR', 'data dir of the embedded Kafka; unset = a temporary dir removed at exit'),
  redisUrl: env.optionalUrl('REDIS_URL', 'real Redis; unset = no movie cache, in-memory rate limits', ['redis', 'rediss']),
  unleashUrl: env.optionalUrl('UNLEASH_URL', 'real Unleash; unset = the local flags file'),
  adminToken: env.optionalString('ADMIN_TOKEN', 'proxy admin API token; unset = a random one, printed at start'),
  flagsFile: env.optionalString('FLAGS_FILE', 'flags file the proxy follows and the admin API writes; unset = a copy of flags/flags.json'),
}

export type StartConfig = ReturnType<typeof loadStartConfig>
export const loadStartConfig = (source: Record<string, string | undefined> = process.env) => {
  const config = parseEnv(spec, source)
  const base = config.basePort
  return {
    ...config,
    ports: {
      proxy: config.proxyPort ?? base,
      admin: config.adminPort ?? base + 1000,
      monolith: config.monolithPort ?? base + 80,
      movies: config.moviesPort ?? base + 81,
      events: config.eventsPort ?? base + 82,
      kafka: config.kafkaPort ?? base + 1092,
    },
  }
}
export const ENV_VARS = envVarNames(spec)
