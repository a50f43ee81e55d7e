// Every environment variable docker-compose.yml and the Helm chart give the four services is
// one that service reads (ENV_VARS of its config.ts), the original names are all there, and
// the service's loadConfig accepts what it gets with no loopback default left (the rule is
// spelled out in support.ts, envProblems). The addresses point at services that exist.
import { beforeAll, describe, expect, it } from 'vitest'
import { ensureHelm } from '../../dev/helm/helm.ts'
import {
  MIGRATOR,
  RENDER_VARIANTS,
  SERVICES,
  addresses,
  byKind,
  chartEnv,
  composeEnv,
  envProblems,
  find,
  loadCompose,
  renderChart,
} from './support.ts'

beforeAll(() => {
  ensureHelm()
}, 20 * 60_000)

/** Where an infrastructure service listens, in compose and in the chart. */
const INFRA_PORTS: Record<string, number> = { postgres: 5432, redis: 6379, kafka: 9092, unleash: 4242 }

describe('docker-compose.yml', () => {
  const compose = loadCompose()

  for (const svc of SERVICES) {
    it(`${svc.name}: provides what ${svc.configModule} reads and nothing else`, () => {
      const service = compose.services[svc.name]
      expect(service, `compose service ${svc.name}`).toBeDefined()
      expect(envProblems(svc, composeEnv(service!))).toEqual([])
    })
  }

  it('the migrate service gets exactly the database variables of db:migrate', () => {
    expect(envProblems({ ...MIGRATOR, name: 'db:migrate' }, composeEnv(compose.services.migrate!))).toEqual([])
  })

  it('every address points at a compose service on the port it listens on', () => {
    const appPorts = Object.fromEntries(SERVICES.map((s) => [s.name, Number(composeEnv(compose.services[s.name]!).PORT)]))
    const wrong: string[] = []
    for (const name of [...SERVICES.map((s) => s.name), 'migrate']) {
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
    const byDefault = proxy.loadConfig(composeEnv(service)) as Record<string, unknown>
    expect(byDefault.unleashUrl).toBe('http://unleash:4242/api')
    expect(byDefault.gradualMigration).toBeUndefined()

    // `UNLEASH_URL= GRADUAL_MIGRATION=true MOVIES_MIGRATION_PERCENT=30 docker compose up`
    const shell = { UNLEASH_URL: '', GRADUAL_MIGRATION: 'true', MOVIES_MIGRATION_PERCENT: '30' }
    const pinned = composeEnv(service, shell)
    expect(envProblems(proxy, pinned)).toEqual([])
    const config = proxy.loadConfig(pinned) as Record<string, unknown>
    expect(config).toMatchObject({ unleashUrl: undefined, gradualMigration: true, moviesMigrationPercent: 30 })
  })
})

describe('Helm chart', () => {
  for (const [variant, args] of Object.entries(RENDER_VARIANTS)) {
    describe(variant, () => {
      for (const svc of SERVICES) {
        it(`${svc.name}: provides what ${svc.configModule} reads and nothing else`, () => {
          const objects = renderChart(args)
          expect(envProblems(svc, chartEnv(objects, find(objects, 'Deployment', svc.name)))).toEqual([])
        })
      }

      it('the migrate Job gets exactly the database variables of db:migrate', () => {
        const objects = renderChart(args)
        expect(envProblems({ ...MIGRATOR, name: 'db:migrate' }, chartEnv(objects, find(objects, 'Job', 'cinemaabyss-migrate')))).toEqual([])
      })

      it('every address points at a rendered Service and one of its ports', () => {
        const objects = renderChart(args)
        const services = new Map(byKind(objects, 'Service').map((s) => [s.metadata.name, s.spec.ports.map((p: any) => p.port)]))
        const wrong: string[] = []
        const workloads = [...SERVICES.map((s) => find(objects, 'Deployment', s.name)), find(objects, 'Job', 'cinemaabyss-migrate')]
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
    const config = proxy.loadConfig(chartEnv(objects, find(objects, 'Deployment', 'proxy-service'))) as Record<string, unknown>
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
    expect(proxy.loadConfig(proxyEnv)).toMatchObject({ unleashAdminUrl: 'http://unleash:4242/api/admin', unleashEnvironment: unleashEnv.IMPORT_ENVIRONMENT, adminTokens: [{ name: 'admin' }] })
    const without = renderChart(RENDER_VARIANTS['without Unleash, legacy pair pinned'])
    expect(chartEnv(without, find(without, 'Deployment', 'proxy-service')).UNLEASH_ADMIN_TOKEN).toBeUndefined()
    const compose = loadCompose()
    expect(composeEnv(compose.services['proxy-service']!).UNLEASH_ADMIN_TOKEN).toBe(composeEnv(compose.services.unleash!).INIT_ADMIN_API_TOKENS)
  })
})
