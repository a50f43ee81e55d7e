// Shared by the deployment tests: the four services and what they read (imported from their
// own config modules, never copied), docker-compose.yml loaded, the Helm chart rendered by the
// real helm (dev/helm), and the environment each container gets in both.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { parse, parseAllDocuments } from 'yaml'
import { runHelm } from '../../dev/helm/helm.ts'
import { envVarNames, parseEnv } from '../../lib/config.ts'
import { migrateEnv } from '../../lib/db/migrate.ts'
import * as eventsConfig from '../../events-service/config.ts'
import * as monolithConfig from '../../monolith/config.ts'
import * as moviesConfig from '../../movies-service/config.ts'
import * as proxyConfig from '../../proxy/config.ts'
import { readRouteFile, routeMapEnvVars } from '../../proxy/model/route-map.ts'
import { REPO_ROOT } from '../helpers/processes.ts'

export { REPO_ROOT }
export const CHART_DIR = 'k8s/cinemaabyss'
export const NAMESPACE = 'cinemaabyss'

export const readRepoFile = (path: string) => readFileSync(join(REPO_ROOT, path), 'utf8')

export interface ServiceUnderTest {
  /** Its name in docker-compose.yml and its Deployment/Service name in the chart. */
  name: string
  configModule: string
  ENV_VARS: readonly string[]
  loadConfig: (source: Record<string, string | undefined>) => unknown
  /** The original variables (and the ones the issue names) that every deployment must set. */
  mustProvide: readonly string[]
  /** Liveness endpoints the service serves (readiness is /ready on all). */
  healthPaths: readonly string[]
  entry: string
}

export const SERVICES: readonly ServiceUnderTest[] = [
  {
    name: 'monolith',
    configModule: 'monolith/config.ts',
    ...monolithConfig,
    mustProvide: ['PORT', 'DB_CONNECTION_STRING', 'KAFKA_BROKERS'],
    healthPaths: ['/health'],
    entry: 'monolith/server.ts',
  },
  {
    name: 'movies-service',
    configModule: 'movies-service/config.ts',
    ...moviesConfig,
    mustProvide: ['PORT', 'DB_CONNECTION_STRING', 'REDIS_URL', 'KAFKA_BROKERS'],
    healthPaths: ['/health', '/api/movies/health'],
    entry: 'movies-service/server.ts',
  },
  {
    name: 'events-service',
    configModule: 'events-service/config.ts',
    ...eventsConfig,
    mustProvide: ['PORT', 'KAFKA_BROKERS'],
    healthPaths: ['/health', '/api/events/health'],
    entry: 'events-service/server.ts',
  },
  {
    name: 'proxy-service',
    configModule: 'proxy/config.ts',
    ...proxyConfig,
    mustProvide: [
      'PORT',
      'MONOLITH_URL',
      'MOVIES_SERVICE_URL',
      'EVENTS_SERVICE_URL',
      // and every other upstream URL variable the shipped route map names (a new service's)
      ...routeMapEnvVars(readRouteFile(join(REPO_ROOT, 'proxy/routes.json'))).filter((v) => !['MONOLITH_URL', 'MOVIES_SERVICE_URL', 'EVENTS_SERVICE_URL'].includes(v)),
      'GRADUAL_MIGRATION',
      'MOVIES_MIGRATION_PERCENT',
      'REDIS_URL',
      'UNLEASH_URL',
      'UNLEASH_API_TOKEN',
    ],
    healthPaths: ['/health'],
    entry: 'proxy/server.ts',
  },
]

/** The schema migrator (`npm run db:migrate`, the compose `migrate` service, the chart's hook Job). */
export const MIGRATOR = {
  ENV_VARS: envVarNames(migrateEnv),
  loadConfig: (source: Record<string, string | undefined>) => parseEnv(migrateEnv, source),
  mustProvide: ['DB_CONNECTION_STRING'],
}

/** The catalog-db migrator: the same command with DB_MIGRATIONS=catalog. */
export const CATALOG_MIGRATOR = { ...MIGRATOR, mustProvide: ['DB_CONNECTION_STRING', 'DB_MIGRATIONS'] }

/** The database a PostgreSQL URL opens: server, port and database name (credentials aside). */
export function databaseOf(url: string): string {
  const u = new URL(url)
  return `${u.hostname.replace(/\.[a-z0-9-]+\.svc\.cluster\.local$/, '')}:${u.port || '5432'}${u.pathname}`
}

/** Later names of a variable that has an original one: deployments set the original. */
export const ALIASES: Readonly<Record<string, string>> = { DATABASE_URL: 'DB_CONNECTION_STRING' }

/**
 * The rule every deployment of a service must satisfy, given the variables it provides:
 *  1. every provided variable is one the service reads (its config module's ENV_VARS);
 *  2. the original names the issue lists (mustProvide) are all provided;
 *  3. the original name is used, never a later alias (DB_CONNECTION_STRING, not DATABASE_URL);
 *  4. "everything the service reads is provided" where it matters: loadConfig(provided)
 *     succeeds, so every required variable is there and every value is valid; and no address
 *     in the resulting config is a loopback default (localhost/127.0.0.1), i.e. every variable
 *     naming another host is provided. Tuning variables with safe defaults (timeouts, pool
 *     sizes, LOG_LEVEL, ...) may stay unset: their defaults are right in a container.
 * `files` maps the files mounted into the container to local ones (composeFiles, chartFiles), so
 * that a variable naming a mounted file (ROUTES_FILE) is loaded from what the container gets.
 * Returns the violations, each naming the variable.
 */
export function envProblems(
  svc: Pick<ServiceUnderTest, 'ENV_VARS' | 'loadConfig' | 'mustProvide'> & { name?: string },
  provided: Record<string, string>,
  files: MountedFiles = new Map(),
): string[] {
  const who = svc.name ?? 'the service'
  const problems: string[] = []
  for (const name of Object.keys(provided)) {
    if (!svc.ENV_VARS.includes(name)) problems.push(`${name} is provided but ${who} does not read it`)
    if (ALIASES[name]) problems.push(`${name} is provided: use the original name ${ALIASES[name]}`)
  }
  for (const name of svc.mustProvide) if (!(name in provided)) problems.push(`${name} is not provided`)
  let config: unknown
  try {
    config = svc.loadConfig(throughMounts(provided, files))
  } catch (error) {
    problems.push(`loadConfig rejects the provided environment: ${(error as Error).message}`)
    return problems
  }
  for (const [path, value] of leaves(config)) {
    if (/\b(localhost|127\.0\.0\.1)\b|\[::1\]/.test(value)) problems.push(`config ${path} = ${value}: a loopback default, its variable is not provided`)
  }
  return problems
}

/** Container path (a file or a directory) → the local file or directory behind it. */
export type MountedFiles = ReadonlyMap<string, string>

/** `env` with every value naming a mounted path (or a path under it) replaced by the local one. */
export function throughMounts(env: Record<string, string>, files: MountedFiles): Record<string, string> {
  const local = (value: string) => {
    for (const [target, source] of files) {
      if (value === target) return source
      if (value.startsWith(`${target}/`)) return join(source, value.slice(target.length + 1))
    }
    return value
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, local(v)]))
}

function* leaves(value: unknown, path = ''): Generator<[string, string]> {
  if (typeof value === 'string') yield [path, value]
  else if (Array.isArray(value)) for (const [i, v] of value.entries()) yield* leaves(v, `${path}[${i}]`)
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) yield* leaves(v, path ? `${path}.${k}` : k)
}

// --- docker-compose -----------------------------------------------------------------------

export interface ComposeService {
  image?: string
  build?: string | { context?: string; target?: string; dockerfile?: string }
  command?: string | string[]
  environment?: Record<string, string | number | boolean | null> | string[]
  healthcheck?: { test?: string | string[]; disable?: boolean }
  depends_on?: string[] | Record<string, { condition: string }>
  ports?: (string | number | { target: number; published?: string | number })[]
  volumes?: (string | { type: string; source?: string; target: string })[]
  restart?: string
  [key: string]: unknown
}
export interface ComposeFile {
  services: Record<string, ComposeService>
  volumes?: Record<string, unknown>
  [key: string]: unknown
}

export function loadCompose(): ComposeFile {
  return parse(readRepoFile('docker-compose.yml'), { merge: true }) as ComposeFile
}

/**
 * Compose's variable interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}
 * (throws when unset or empty), ${VAR?error} (throws when unset), $$ (a literal $).
 */
export function interpolate(text: string, shell: Record<string, string | undefined>): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g, (match, name: string | undefined, op: string | undefined, fallback: string | undefined) => {
    if (match === '$$') return '$'
    const value = shell[name!]
    if (op === ':-') return value === undefined || value === '' ? fallback! : value
    if (op === '-') return value === undefined ? fallback! : value
    if ((op === ':?' && (value === undefined || value === '')) || (op === '?' && value === undefined)) throw new Error(`required variable ${name} is missing a value: ${fallback}`)
    return value ?? ''
  })
}

/** The variables .env.example lists (docker compose's secrets), in order. */
export function envExampleNames(): string[] {
  return [...readRepoFile('.env.example').matchAll(/^([A-Z][A-Z0-9_]*)=(.*)$/gm)].map((m) => m[1]!)
}

/** A .env as its README line makes one: every variable of .env.example with a random-looking value. */
export const COMPOSE_DOT_ENV: Readonly<Record<string, string>> = Object.fromEntries(envExampleNames().map((name) => [name, `${name.toLowerCase().replace(/_/g, '')}0123456789abcdef`]))

/** The environment a compose service's container gets, after interpolation from `shell`. */
export function composeEnv(service: ComposeService, shell: Record<string, string | undefined> = COMPOSE_DOT_ENV): Record<string, string> {
  const env: Record<string, string> = {}
  const raw = service.environment ?? {}
  const pairs = Array.isArray(raw)
    ? raw.map((line) => {
        const i = line.indexOf('=')
        return [i < 0 ? line : line.slice(0, i), i < 0 ? '' : line.slice(i + 1)] as const
      })
    : Object.entries(raw).map(([k, v]) => [k, v === null ? '' : String(v)] as const)
  for (const [k, v] of pairs) env[k] = interpolate(v, shell)
  return env
}

/** A compose service's bind mounts of repository paths (`./x:/y[:ro]`), as container path → local path. */
export function composeFiles(service: ComposeService): MountedFiles {
  const files = new Map<string, string>()
  for (const volume of service.volumes ?? []) {
    const [source, target] = typeof volume === 'string' ? volume.split(':') : [volume.type === 'bind' ? volume.source : undefined, volume.target]
    if (source?.startsWith('.') && target) files.set(target, resolve(REPO_ROOT, source))
  }
  return files
}

/** composeEnv with mounted file paths replaced by the repository's files. */
export const composeEnvLocally = (service: ComposeService, shell: Record<string, string | undefined> = COMPOSE_DOT_ENV) => throughMounts(composeEnv(service, shell), composeFiles(service))

// --- Helm ----------------------------------------------------------------------------------

export interface K8sObject {
  apiVersion: string
  kind: string
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }
  spec?: any
  data?: Record<string, string>
  stringData?: Record<string, string>
  [key: string]: any
}

const renders = new Map<string, K8sObject[]>()

/** `helm template cinemaabyss k8s/cinemaabyss -n cinemaabyss <args>`, parsed (cached per args). */
export function renderChart(givenArgs: readonly string[] = []): K8sObject[] {
  const args = [...givenArgs]
  const key = args.join('\u0000')
  const cached = renders.get(key)
  if (cached) return cached
  const result = runHelm(['template', 'cinemaabyss', CHART_DIR, '--namespace', NAMESPACE, ...args])
  if (result.status !== 0) throw new Error(`helm template ${args.join(' ')} failed:\n${result.stderr}`)
  const objects = parseAllDocuments(result.stdout)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`helm rendered invalid YAML: ${doc.errors[0]!.message}`)
      return doc.toJS() as K8sObject | null
    })
    .filter((o): o is K8sObject => o !== null && typeof o === 'object')
  renders.set(key, objects)
  return objects
}

export const RENDER_VARIANTS: Record<string, readonly string[]> = {
  defaults: [],
  'istio + observability': ['--set', 'istio.enabled=true', '--set', 'observability.enabled=true'],
  'istio task-5 demo values': ['-f', `${CHART_DIR}/values-istio-demo.yaml`],
  'tracing to the chart\'s Jaeger': ['--set', 'tracing.enabled=true', '--set', 'jaeger.enabled=true'],
  'without Unleash, legacy pair pinned': [
    '--set', 'unleash.enabled=false', '--set', 'proxy.migration.gradual=true', '--set', 'proxy.migration.moviesPercent=30',
  ],
}

export const byKind = (objects: readonly K8sObject[], kind: string) => objects.filter((o) => o.kind === kind)
export function find(objects: readonly K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name)
  if (!found) throw new Error(`no ${kind} ${name} in the rendered chart`)
  return found
}

/** The pod template of a workload (Deployment, StatefulSet, Job). */
export const podSpec = (workload: K8sObject) => workload.spec.template.spec

/** Every container of the rendered objects, init containers included, with its owner. */
export function allContainers(objects: readonly K8sObject[]): { owner: string; container: any; init: boolean }[] {
  return objects
    .filter((o) => o.spec?.template?.spec?.containers)
    .flatMap((o) => [
      ...podSpec(o).containers.map((c: any) => ({ owner: `${o.kind}/${o.metadata.name}`, container: c, init: false })),
      ...(podSpec(o).initContainers ?? []).map((c: any) => ({ owner: `${o.kind}/${o.metadata.name}`, container: c, init: true })),
    ])
}

/** The environment the first container of a workload gets: env (values, ConfigMap/Secret refs) and envFrom. */
export function chartEnv(objects: readonly K8sObject[], workload: K8sObject): Record<string, string> {
  const container = podSpec(workload).containers[0]
  const env: Record<string, string> = {}
  const configMap = (name: string) => find(objects, 'ConfigMap', name).data ?? {}
  const secret = (name: string) => {
    const s = find(objects, 'Secret', name)
    const decoded = Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]))
    return { ...decoded, ...(s.stringData ?? {}) }
  }
  for (const from of container.envFrom ?? []) {
    const data = from.configMapRef ? configMap(from.configMapRef.name) : secret(from.secretRef.name)
    for (const [k, v] of Object.entries(data)) env[`${from.prefix ?? ''}${k}`] = String(v)
  }
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = String(e.value)
    else if (e.valueFrom?.configMapKeyRef) env[e.name] = requiredKey(configMap(e.valueFrom.configMapKeyRef.name), e.valueFrom.configMapKeyRef.key, e.name)
    else if (e.valueFrom?.secretKeyRef) env[e.name] = requiredKey(secret(e.valueFrom.secretKeyRef.name), e.valueFrom.secretKeyRef.key, e.name)
    else env[e.name] = ''
  }
  return env
}

let copiesDir: string | undefined
function chartFilesDir(): string {
  if (!copiesDir) {
    const dir = (copiesDir = mkdtempSync(join(tmpdir(), 'chart-files-')))
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
  }
  return mkdtempSync(join(copiesDir, 'render-'))
}

/**
 * The files a workload's first container gets from ConfigMap volumes, as container path → a local
 * copy of the rendered content (written to a temporary folder).
 */
export function chartFiles(objects: readonly K8sObject[], workload: K8sObject): MountedFiles {
  const files = new Map<string, string>()
  const spec = podSpec(workload)
  const copies = chartFilesDir()
  for (const mount of spec.containers[0].volumeMounts ?? []) {
    const volume = (spec.volumes ?? []).find((v: any) => v.name === mount.name)
    if (!volume?.configMap) continue
    const data = find(objects, 'ConfigMap', volume.configMap.name).data ?? {}
    for (const [key, content] of Object.entries(data)) {
      if (mount.subPath && mount.subPath !== key) continue
      const copy = join(copies, volume.configMap.name, key)
      mkdirSync(dirname(copy), { recursive: true })
      writeFileSync(copy, content)
      files.set(mount.subPath ? mount.mountPath : `${mount.mountPath}/${key}`, copy)
    }
  }
  return files
}

/** chartEnv with mounted file paths replaced by local copies: what loadConfig can read here. */
export const chartEnvLocally = (objects: readonly K8sObject[], workload: K8sObject) => throughMounts(chartEnv(objects, workload), chartFiles(objects, workload))

function requiredKey(data: Record<string, string>, key: string, variable: string): string {
  if (!(key in data)) throw new Error(`${variable} refers to key ${key}, which the rendered object does not have`)
  return data[key]!
}

/** host:port pairs a variable's value points at (URLs and comma-separated broker lists). */
export function addresses(value: string): { host: string; port: number }[] {
  return value
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)
    .flatMap((part) => {
      const m = /^(?:[a-z][a-z0-9+.-]*:\/\/)?(?:[^@/]*@)?([A-Za-z0-9.-]+):(\d+)(?:[/?].*)?$/.exec(part)
      return m ? [{ host: m[1]!, port: Number(m[2]) }] : []
    })
}
