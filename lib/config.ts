// Declarative environment parsing shared by every service's config.ts:
//
//   const spec = { port: env.port('PORT', 8080), dbUrl: env.string(['DB_CONNECTION_STRING', 'DATABASE_URL'], '...') }
//   export const loadConfig = (source = process.env) => parseEnv(spec, source)
//   export const ENV_VARS = envVarNames(spec)
//
// A bad value fails at start with every offending variable named. ENV_VARS is the list the
// deployment tests compare docker-compose and the Helm chart against.

import { readFileSync } from 'node:fs'

export class ConfigError extends Error {
  override readonly name = 'ConfigError'
}

type Source = Record<string, string | undefined>

export interface EnvField<T> {
  /** Accepted names, first one canonical; later ones are aliases (e.g. the legacy names). */
  names: readonly string[]
  description: string
  parse(raw: string | undefined, name: string): T
  /**
   * A value made of several variables that are only meaningful together (e.g. a SASL
   * mechanism and its credentials): when present, parseEnv hands it every one of `names`
   * (here not aliases but parts) and calls it instead of parse.
   */
  parseGroup?(values: Readonly<Record<string, string | undefined>>): T
}

type Names = string | readonly string[]
const asNames = (n: Names): readonly string[] => (typeof n === 'string' ? [n] : n)

function field<T>(names: Names, description: string, parse: (raw: string | undefined, name: string) => T): EnvField<T> {
  return { names: asNames(names), description, parse }
}

function required(raw: string | undefined, name: string): string {
  if (raw === undefined || raw === '') throw new ConfigError(`${name} is required`)
  return raw
}

function parseInteger(raw: string, name: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(`${name} must be an integer, got "${raw}"`)
  const value = Number(raw)
  if (value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `between ${min} and ${max}`
    throw new ConfigError(`${name} must be ${range}, got ${value}`)
  }
  return value
}

export const env = {
  string(names: Names, fallback?: string, description = ''): EnvField<string> {
    return field(names, description, (raw, name) => (raw === undefined || raw === '' ? required(fallback, name) : raw))
  },

  optionalString(names: Names, description = ''): EnvField<string | undefined> {
    return field(names, description, (raw) => (raw === undefined || raw === '' ? undefined : raw))
  },

  int(names: Names, fallback: number | undefined, opts: { min?: number; max?: number; description?: string } = {}): EnvField<number> {
    const min = opts.min ?? Number.MIN_SAFE_INTEGER
    const max = opts.max ?? Number.MAX_SAFE_INTEGER
    return field(names, opts.description ?? '', (raw, name) =>
      raw === undefined || raw === '' ? Number(required(fallback?.toString(), name)) : parseInteger(raw, name, min, max),
    )
  },

  port(names: Names, fallback: number, description = 'TCP port to listen on'): EnvField<number> {
    return env.int(names, fallback, { min: 0, max: 65535, description })
  },

  optionalPort(names: Names, description = ''): EnvField<number | undefined> {
    return field(names, description, (raw, name) => (raw === undefined || raw === '' ? undefined : parseInteger(raw, name, 0, 65535)))
  },

  bool(names: Names, fallback: boolean, description = ''): EnvField<boolean> {
    return field(names, description, (raw, name) => (raw === undefined || raw === '' ? fallback : parseBool(raw, name)))
  },

  /** Three-valued: unset means "not decided here" (undefined). */
  optionalBool(names: Names, description = ''): EnvField<boolean | undefined> {
    return field(names, description, (raw, name) => (raw === undefined || raw === '' ? undefined : parseBool(raw, name)))
  },

  url(names: Names, fallback?: string, description = '', protocols?: readonly string[]): EnvField<string> {
    return field(names, description, (raw, name) => checkUrl(raw === undefined || raw === '' ? required(fallback, name) : raw, name, protocols))
  },

  optionalUrl(names: Names, description = '', protocols?: readonly string[]): EnvField<string | undefined> {
    return field(names, description, (raw, name) => (raw === undefined || raw === '' ? undefined : checkUrl(raw, name, protocols)))
  },

  oneOf<const T extends string>(names: Names, values: readonly T[], fallback: T, description = ''): EnvField<T> {
    return field(names, description, (raw, name) => {
      if (raw === undefined || raw === '') return fallback
      if (!(values as readonly string[]).includes(raw)) throw new ConfigError(`${name} must be one of ${values.join(', ')}, got "${raw}"`)
      return raw as T
    })
  },

  /** Comma-separated list, e.g. KAFKA_BROKERS=kafka:9092,kafka2:9092. */
  list(names: Names, fallback: readonly string[] | undefined, description = ''): EnvField<string[]> {
    return field(names, description, (raw, name) => {
      if (raw === undefined || raw.trim() === '') {
        if (!fallback) throw new ConfigError(`${name} is required`)
        return [...fallback]
      }
      return raw.split(',').map((s) => s.trim()).filter(Boolean)
    })
  },

  /** Comma-separated subset of known values (default none), e.g. ENFORCE_RULES=a,b; an unknown value fails. */
  subsetOf<const T extends string>(names: Names, values: readonly T[], description = ''): EnvField<T[]> {
    return field(names, description, (raw, name) => {
      const given = (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean)
      const unknown = given.filter((v) => !(values as readonly string[]).includes(v))
      if (unknown.length > 0) throw new ConfigError(`${name} must list values among ${values.join(', ')}; unknown: ${unknown.join(', ')}`)
      return [...new Set(given)] as T[]
    })
  },
}

/**
 * Several variables parsed together (see EnvField.parseGroup); `parse` names the variable at
 * fault in each ConfigError it throws.
 */
export function envGroup<T>(names: readonly string[], description: string, parse: (values: Readonly<Record<string, string | undefined>>) => T): EnvField<T> {
  return {
    names,
    description,
    parse: () => {
      throw new Error('a group is parsed by parseGroup')
    },
    parseGroup: parse,
  }
}

/** The text of a file a variable names (a CA bundle, ...), or a ConfigError naming the variable. */
export function readConfigFile(path: string, name: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (error) {
    throw new ConfigError(`${name}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? String(error)})`)
  }
}

export function parseBool(raw: string, name: string): boolean {
  const v = raw.trim().toLowerCase()
  if (['true', '1', 'yes', 'on'].includes(v)) return true
  if (['false', '0', 'no', 'off'].includes(v)) return false
  throw new ConfigError(`${name} must be true or false, got "${raw}"`)
}

function checkUrl(value: string, name: string, protocols?: readonly string[]): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new ConfigError(`${name} must be a URL, got "${value}"`)
  }
  if (protocols && !protocols.includes(url.protocol.replace(/:$/, ''))) {
    throw new ConfigError(`${name} must use ${protocols.join(' or ')}, got "${url.protocol}"`)
  }
  return value
}

export type EnvSpec = Record<string, EnvField<unknown>>
export type ConfigOf<S extends EnvSpec> = { [K in keyof S]: S[K] extends EnvField<infer T> ? T : never }

/** Parses `source` against `spec`; throws one ConfigError listing every bad variable. */
export function parseEnv<S extends EnvSpec>(spec: S, source: Source = process.env): ConfigOf<S> {
  const out: Record<string, unknown> = {}
  const problems: string[] = []
  for (const [key, f] of Object.entries(spec)) {
    if (f.parseGroup) {
      const values = Object.fromEntries(f.names.map((n) => [n, source[n] === '' ? undefined : source[n]]))
      try {
        out[key] = f.parseGroup(values)
      } catch (error) {
        problems.push(error instanceof Error ? error.message : String(error))
      }
      continue
    }
    const name = f.names.find((n) => source[n] !== undefined && source[n] !== '') ?? f.names[0]
    try {
      out[key] = f.parse(source[name], name)
    } catch (error) {
      problems.push(error instanceof Error ? error.message : String(error))
    }
  }
  if (problems.length > 0) throw new ConfigError(`invalid configuration: ${problems.join('; ')}`)
  return out as ConfigOf<S>
}

/** Every environment variable name a spec reads, aliases included. */
export function envVarNames(spec: EnvSpec): string[] {
  return Object.values(spec).flatMap((f) => f.names)
}

const MIN_INTERNAL_TOKEN = 24

/** INTERNAL_TOKEN: long enough to be a secret; never echoed. */
const internalTokenEnv: EnvField<string | undefined> = field(
  'INTERNAL_TOKEN',
  "shared secret of the proxy's calls to the services' /internal/* endpoints (header X-Internal-Token; lib/http/internal-auth.ts), at least 24 characters; the same value on the proxy and every service. Unset = /internal answers loopback clients only",
  (raw, name) => {
    if (raw === undefined || raw === '') return undefined
    if (raw.length < MIN_INTERNAL_TOKEN) throw new ConfigError(`${name} must be at least ${MIN_INTERNAL_TOKEN} characters (e.g. openssl rand -hex 32)`)
    return raw
  },
)

/** Variables every HTTP service reads besides its PORT. */
export const serverEnv = {
  host: env.string('HOST', '0.0.0.0', 'interface to listen on'),
  internalToken: internalTokenEnv,
  logLevel: env.oneOf('LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info', 'pino log level'),
  bodyLimitBytes: env.int('BODY_LIMIT_BYTES', 1_048_576, { min: 1, description: 'largest accepted request body; larger answers 413' }),
  shutdownTimeoutMs: env.int('SHUTDOWN_TIMEOUT_MS', 10_000, { min: 0, description: 'how long in-flight requests may take to finish on SIGTERM' }),
  // Tracing (lib/tracing/): the OpenTelemetry SDK reads these itself; declared here so that a
  // bad value stops the service at start, named, and the deployment checks know them.
  otlpEndpoint: env.optionalUrl('OTEL_EXPORTER_OTLP_ENDPOINT', 'OTLP/HTTP receiver, e.g. http://jaeger:4318: tracing is on when set', ['http', 'https']),
  otelServiceName: env.optionalString('OTEL_SERVICE_NAME', "service name on the spans (default: the service's own)"),
  otelTracesSampler: env.oneOf(
    'OTEL_TRACES_SAMPLER',
    ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'],
    'parentbased_always_on',
    'which requests are traced; parentbased_traceidratio with OTEL_TRACES_SAMPLER_ARG=0.1 traces 1 in 10 (and follows the caller)',
  ),
  otelTracesSamplerArg: env.optionalString('OTEL_TRACES_SAMPLER_ARG', 'the ratio of the *traceidratio samplers, 0 to 1'),
}

/** Variables of a service that owns a PostgreSQL connection pool. */
export const databaseEnv = {
  databaseUrl: env.url(
    ['DB_CONNECTION_STRING', 'DATABASE_URL'],
    'postgres://postgres:postgres@localhost:5432/cinemaabyss?sslmode=disable',
    'PostgreSQL connection string (the legacy name DB_CONNECTION_STRING wins over DATABASE_URL)',
    ['postgres', 'postgresql'],
  ),
  dbPoolMax: env.int('DB_POOL_MAX', 10, { min: 1, max: 1000, description: 'PostgreSQL pool size' }),
  dbConnectTimeoutMs: env.int('DB_CONNECT_TIMEOUT_MS', 2_000, { min: 1, description: 'PostgreSQL connect timeout' }),
  dbStatementTimeoutMs: env.int('DB_STATEMENT_TIMEOUT_MS', 5_000, { min: 1, description: 'PostgreSQL statement_timeout' }),
}
