// Every environment variable docker-compose.yml and the Helm chart give the four services is
// one that service reads (ENV_VARS of its config.ts), the original names are all there, and
// the service's loadConfig accepts what it gets with no loopback default left (the rule is
// spelled out in support.ts, envProblems). The addresses point at services that exist.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { ensureHelm } from '../../dev/helm/helm.ts'
import { readRouteFile, routeMapEnvVars } from '../../proxy/model/route-map.ts'
import {
  CATALOG_MIGRATOR,
  COMPOSE_DOT_ENV,
  MIGRATOR,
  databaseOf,
  podSpec,
  REPO_ROOT,
  RENDER_VARIANTS,
  SERVICES,
  addresses,
  byKind,
  chartEnv,
  chartEnvLocally,
  chartFiles,
  composeEnv,
  composeEnvLocally,
  composeFiles,
  envProblems,
  find,
  loadCompose,
  readRepoFile,
  renderChart,
  throughMounts,
} from './support.ts'

beforeAll(() => {
  ensureHelm()
}, 20 * 60_000)

/** Where an infrastructure service listens, in compose and in the chart. */
const INFRA_PORTS: Record<string, number> = { postgres: 5432, 'catalog-db': 5432, redis: 6379, kafka: 9092, unleash: 4242, jaeger: 4318 }

describe('docker-compose.yml', () => {
  const compose = loadCompose()

  for (const svc of SERVICES) {
    it(`${svc.name}: provides what ${svc.configModule} reads and nothing else`, () => {
      const service = compose.services[svc.name]
      expect(service, `compose service ${svc.name}`).toBeDefined()
      expect(envProblems(svc, composeEnv(service!), composeFiles(service!))).toEqual([])
    })
  }

  it('the migrate service gets exactly the database variables of db:migrate', () => {
    expect(envProblems({ ...MIGRATOR, name: 'db:migrate' }, composeEnv(compose.services.migrate!))).toEqual([])
    expect(envProblems({ ...CATALOG_MIGRATOR, name: 'db:migrate (catalog)' }, composeEnv(compose.services['migrate-catalog']!))).toEqual([])
  })

  it('the monolith and the movies service never point at the same database; each migrator migrates its service\'s', () => {
    const url = (name: string) => composeEnv(compose.services[name]!).DB_CONNECTION_STRING!
    expect(databaseOf(url('movies-service'))).not.toBe(databaseOf(url('monolith')))
    expect(databaseOf(url('movies-service'))).toBe('catalog-db:5432/catalog')
    expect(databaseOf(url('migrate'))).toBe(databaseOf(url('monolith')))
    expect(databaseOf(url('migrate-catalog'))).toBe(databaseOf(url('movies-service')))
    expect(composeEnv(compose.services['migrate-catalog']!).DB_MIGRATIONS).toBe('catalog')
    // Own credentials: the user of one is not the user of the other.
    expect(new URL(url('movies-service')).username).not.toBe(new URL(url('monolith')).username)
  })

  it('every address points at a compose service on the port it listens on', () => {
    const appPorts = Object.fromEntries(SERVICES.map((s) => [s.name, Number(composeEnv(compose.services[s.name]!).PORT)]))
    const wrong: string[] = []
    for (const name of [...SERVICES.map((s) => s.name), 'migrate', 'migrate-catalog']) {
      for (const [variable, value] of Object.entries(composeEnv(compose.services[name]!))) {
        for (const { host, port } of addresses(value)) {
          const expected = appPorts[host] ?? INFRA_PORTS[host]
          if (!compose.services[host]) wrong.push(`${name} ${variable}: no compose service "${host}"`)
          else if (port !== expected) wrong.push(`${name} ${variable}: ${host} listens on ${expected}, not ${port}`)
        }
      }
    }
    expect(wrong).toEqual([])
    // The check above saw the wiring (not an empty set of addresses).
    expect(addresses(composeEnv(compose.services['proxy-service']!).MONOLITH_URL!)).toEqual([{ host: 'monolith', port: 8080 }])
  })

  it('the proxy follows Unleash by default; without it the original pair pins the movies split', () => {
    const proxy = SERVICES.find((s) => s.name === 'proxy-service')!
    const service = compose.services['proxy-service']!
    const byDefault = proxy.loadConfig(composeEnvLocally(service)) as Record<string, unknown>
    expect(byDefault.unleashUrl).toBe('http://unleash:4242/api')
    expect(byDefault.gradualMigration).toBeUndefined()

    // `UNLEASH_URL= GRADUAL_MIGRATION=true MOVIES_MIGRATION_PERCENT=30 docker compose up`
    const shell = { ...COMPOSE_DOT_ENV, UNLEASH_URL: '', GRADUAL_MIGRATION: 'true', MOVIES_MIGRATION_PERCENT: '30' }
    expect(envProblems(proxy, composeEnv(service, shell), composeFiles(service))).toEqual([])
    const config = proxy.loadConfig(composeEnvLocally(service, shell)) as Record<string, unknown>
    expect(config).toMatchObject({ unleashUrl: undefined, gradualMigration: true, moviesMigrationPercent: 30 })
  })
})

describe('Helm chart', () => {
  for (const [variant, args] of Object.entries(RENDER_VARIANTS)) {
    describe(variant, () => {
      for (const svc of SERVICES) {
        it(`${svc.name}: provides what ${svc.configModule} reads and nothing else`, () => {
          const objects = renderChart(args)
          const workload = find(objects, 'Deployment', svc.name)
          expect(envProblems(svc, chartEnv(objects, workload), chartFiles(objects, workload))).toEqual([])
        })
      }

      it('the migrate Jobs get exactly the database variables of db:migrate', () => {
        const objects = renderChart(args)
        expect(envProblems({ ...MIGRATOR, name: 'db:migrate' }, chartEnv(objects, find(objects, 'Job', 'cinemaabyss-migrate')))).toEqual([])
        expect(envProblems({ ...CATALOG_MIGRATOR, name: 'db:migrate (catalog)' }, chartEnv(objects, find(objects, 'Job', 'cinemaabyss-migrate-catalog')))).toEqual([])
      })

      it('the monolith and the movies service never point at the same database, nor with the same credentials', () => {
        const objects = renderChart(args)
        const url = (kind: string, name: string) => chartEnv(objects, find(objects, kind, name)).DB_CONNECTION_STRING!
        const [legacy, catalog] = [url('Deployment', 'monolith'), url('Deployment', 'movies-service')]
        expect(databaseOf(catalog)).not.toBe(databaseOf(legacy))
        expect(databaseOf(catalog)).toBe('catalog-db:5432/catalog')
        expect(new URL(catalog).username).not.toBe(new URL(legacy).username)
        expect(new URL(catalog).password).not.toBe(new URL(legacy).password)
        expect(databaseOf(url('Job', 'cinemaabyss-migrate'))).toBe(databaseOf(legacy))
        expect(databaseOf(url('Job', 'cinemaabyss-migrate-catalog'))).toBe(databaseOf(catalog))
        // Each server gets its own password from the Secret.
        const passwordKey = (name: string) => podSpec(find(objects, 'StatefulSet', name)).containers[0].env.find((e: any) => e.name === 'POSTGRES_PASSWORD').valueFrom.secretKeyRef.key
        expect([passwordKey('postgres'), passwordKey('catalog-db')]).toEqual(['POSTGRES_PASSWORD', 'CATALOG_DB_PASSWORD'])
      })

      it('every address points at a rendered Service and one of its ports', () => {
        const objects = renderChart(args)
        const services = new Map(byKind(objects, 'Service').map((s) => [s.metadata.name, s.spec.ports.map((p: any) => p.port)]))
        const wrong: string[] = []
        const workloads = [...SERVICES.map((s) => find(objects, 'Deployment', s.name)), find(objects, 'Job', 'cinemaabyss-migrate'), find(objects, 'Job', 'cinemaabyss-migrate-catalog')]
        let seen = 0
        for (const workload of workloads) {
          for (const [variable, value] of Object.entries(chartEnv(objects, workload))) {
            for (const { host, port } of addresses(value)) {
              seen++
              const short = host.replace(/\.cinemaabyss\.svc\.cluster\.local$/, '')
              const ports = services.get(short)
              if (!ports) wrong.push(`${workload.metadata.name} ${variable}: no Service "${short}"`)
              else if (!ports.includes(port)) wrong.push(`${workload.metadata.name} ${variable}: Service ${short} has no port ${port}`)
            }
          }
        }
        expect(wrong).toEqual([])
        expect(seen).toBeGreaterThanOrEqual(6)
      })
    })
  }

  it('the legacy pair reaches the proxy when Unleash is switched off', () => {
    const objects = renderChart(RENDER_VARIANTS['without Unleash, legacy pair pinned'])
    const proxy = SERVICES.find((s) => s.name === 'proxy-service')!
    const config = proxy.loadConfig(chartEnvLocally(objects, find(objects, 'Deployment', 'proxy-service'))) as Record<string, unknown>
    expect(config).toMatchObject({ unleashUrl: undefined, gradualMigration: true, moviesMigrationPercent: 30 })
    expect(byKind(objects, 'Deployment').map((d) => d.metadata.name)).not.toContain('unleash')
  })

  it('by default the proxy asks Unleash with the backend token Unleash creates at start', () => {
    const objects = renderChart()
    const proxyEnv = chartEnv(objects, find(objects, 'Deployment', 'proxy-service'))
    const unleashEnv = chartEnv(objects, find(objects, 'Deployment', 'unleash'))
    expect(proxyEnv.UNLEASH_URL).toBe('http://unleash:4242/api')
    expect(unleashEnv.INIT_BACKEND_API_TOKENS).toBe(proxyEnv.UNLEASH_API_TOKEN)
    expect(proxyEnv.UNLEASH_API_TOKEN).toMatch(new RegExp(`^\\*:${unleashEnv.IMPORT_ENVIRONMENT}\\.`))
  })

  it('the proxy writes rollout changes to Unleash with the admin token Unleash creates, in the environment it reads', () => {
    const objects = renderChart()
    const proxyEnv = chartEnv(objects, find(objects, 'Deployment', 'proxy-service'))
    const unleashEnv = chartEnv(objects, find(objects, 'Deployment', 'unleash'))
    expect(proxyEnv.UNLEASH_ADMIN_TOKEN).toBe(unleashEnv.INIT_ADMIN_API_TOKENS)
    const proxy = SERVICES.find((s) => s.name === 'proxy-service')!
    expect(proxy.loadConfig(chartEnvLocally(objects, find(objects, 'Deployment', 'proxy-service')))).toMatchObject({ unleashAdminUrl: 'http://unleash:4242/api/admin', unleashEnvironment: unleashEnv.IMPORT_ENVIRONMENT, adminTokens: [{ name: 'admin' }] })
    const without = renderChart(RENDER_VARIANTS['without Unleash, legacy pair pinned'])
    expect(chartEnv(without, find(without, 'Deployment', 'proxy-service')).UNLEASH_ADMIN_TOKEN).toBeUndefined()
    const compose = loadCompose()
    expect(composeEnv(compose.services['proxy-service']!).UNLEASH_ADMIN_TOKEN).toBe(composeEnv(compose.services.unleash!).INIT_ADMIN_API_TOKENS)
  })
})

// The route map is data (proxy/routes.json): each deployment mounts it as a file, points
// ROUTES_FILE at it and sets every variable its upstream URLs name.
describe('the route map reaches the proxy as a file', () => {
  const SHIPPED = readRepoFile('proxy/routes.json')

  function routeMapProblems(env: Record<string, string>, files: ReadonlyMap<string, string>): string[] {
    if (!env.ROUTES_FILE) return ['ROUTES_FILE is not set: the proxy would read the route map baked into the image']
    const local = throughMounts(env, files).ROUTES_FILE!
    if (local === env.ROUTES_FILE) return [`ROUTES_FILE=${env.ROUTES_FILE} is not a mounted file`]
    const problems: string[] = []
    if (readFileSync(local, 'utf8') !== SHIPPED) problems.push(`${env.ROUTES_FILE} is not proxy/routes.json`)
    for (const name of routeMapEnvVars(readRouteFile(local))) if (!env[name]) problems.push(`the route map names ${name}, which is not set`)
    return problems
  }

  it('docker-compose.yml mounts ./proxy/routes.json', () => {
    const service = loadCompose().services['proxy-service']!
    const files = composeFiles(service)
    expect(files.get(composeEnv(service).ROUTES_FILE!)).toBe(join(REPO_ROOT, 'proxy/routes.json'))
    expect(routeMapProblems(composeEnv(service), files)).toEqual([])
  })

  for (const [variant, args] of Object.entries(RENDER_VARIANTS)) {
    it(`the chart mounts a ConfigMap equal to proxy/routes.json: ${variant}`, () => {
      const objects = renderChart(args)
      const proxy = find(objects, 'Deployment', 'proxy-service')
      expect(find(objects, 'ConfigMap', 'proxy-routes').data).toEqual({ 'routes.json': SHIPPED })
      expect(routeMapProblems(chartEnv(objects, proxy), chartFiles(objects, proxy))).toEqual([])
    })
  }

  it('the check fails when a variable the route map names is missing or the file is not mounted', () => {
    const service = loadCompose().services['proxy-service']!
    const { EVENTS_SERVICE_URL: _dropped, ...env } = composeEnv(service)
    expect(routeMapProblems(env, composeFiles(service))).toEqual(['the route map names EVENTS_SERVICE_URL, which is not set'])
    expect(routeMapProblems(composeEnv(service), new Map())).toEqual(['ROUTES_FILE=/etc/cinemaabyss/proxy/routes.json is not a mounted file'])
  })
})
