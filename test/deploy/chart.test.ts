// The Helm chart k8s/cinemaabyss, linted and rendered by the real helm (built from its Go
// module by dev/helm), and every rendered object checked: probes, resources, non-root,
// pinned images, Kubernetes/Istio/Prometheus-Operator schemas (kubernetes-models: offline
// OpenAPI validation; `kubectl --dry-run=client` needs an API server for discovery).
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { parseAllDocuments } from 'yaml'
import { ensureHelm, runHelm } from '../../dev/helm/helm.ts'
import {
  CHART_DIR,
  REPO_ROOT,
  RENDER_VARIANTS,
  SERVICES,
  allContainers,
  byKind,
  chartEnvLocally,
  find,
  podSpec,
  readRepoFile,
  renderChart,
  type K8sObject,
} from './support.ts'

beforeAll(() => {
  ensureHelm()
}, 20 * 60_000)

/** The kubernetes-models class validating one apiVersion/kind (its OpenAPI schema, offline). */
async function modelOf(apiVersion: string, kind: string): Promise<(new (data: unknown) => { validate(): void }) | undefined> {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion]
  const pkg = group === 'networking.istio.io' ? '@kubernetes-models/istio/' : group === 'monitoring.coreos.com' ? '@kubernetes-models/prometheus-operator/' : 'kubernetes-models/'
  const path = `${pkg}${group ? `${group}/` : ''}${version}/${kind}`
  try {
    const mod = await import(path)
    return mod[kind] ?? mod.default
  } catch {
    return undefined
  }
}

const WORKLOAD_KINDS = ['Deployment', 'StatefulSet']

describe('helm lint', () => {
  for (const [variant, args] of Object.entries(RENDER_VARIANTS)) {
    it(`passes with --strict: ${variant}`, () => {
      const result = runHelm(['lint', CHART_DIR, '--strict', ...args])
      expect(result.stderr + result.stdout).toContain('1 chart(s) linted, 0 chart(s) failed')
      expect(result.status).toBe(0)
    })
  }

  it('renders for the oldest Kubernetes the chart declares (1.27)', () => {
    const result = runHelm(['template', 'cinemaabyss', CHART_DIR, '--kube-version', '1.27.0', '--set', 'istio.enabled=true'])
    expect(result.stderr).toBe('')
    expect(result.status).toBe(0)
  })

  it('refuses bad values: a latest image, a migration percentage outside 0-100, a short admin token', () => {
    // values.schema.json answers first, the templates' own checks back it up.
    const refused = (args: string[], mentions: RegExp) => {
      const result = runHelm(['template', 'cinemaabyss', CHART_DIR, ...args])
      expect(result.status, args.join(' ')).not.toBe(0)
      expect(result.stderr, args.join(' ')).toMatch(mentions)
    }
    refused(['--set', 'image.tag=latest'], /image\/tag|image\.tag/)
    refused(['--set', 'redis.image=redis:latest'], /redis\/image/)
    refused(['--set', 'proxy.migration.moviesPercent=101'], /moviesPercent/)
    refused(['--set-string', 'proxy.migration.moviesPercent=-5'], /moviesPercent/)
    refused(['--set', 'secrets.proxyAdminToken=short'], /proxyAdminToken/)
    refused(['--set-string', 'secrets.proxyAdminTokens=alice:short'], /proxyAdminTokens/)
    refused(['--set-string', 'secrets.proxyAdminTokens=alice-token-0123456789abcdef'], /proxyAdminTokens/)
    refused(['--set', 'kafka.clusterId=not-a-kraft-id'], /clusterId/)
    const fine = runHelm(['template', 'cinemaabyss', CHART_DIR, '--set', 'proxy.migration.moviesPercent=100', '--set', 'secrets.proxyAdminToken=', '--set-string', 'secrets.proxyAdminTokens=alice:alice-token-0123456789abcdef\\,bob:bob-token-0123456789abcdef'])
    expect(fine.stderr).toBe('')
    expect(fine.status).toBe(0)
  })
})

for (const [variant, args] of Object.entries(RENDER_VARIANTS)) {
  describe(`helm template: ${variant}`, () => {
    let objects: K8sObject[]
    beforeAll(() => {
      objects = renderChart(args)
    })

    it('every object validates against its schema (kubernetes-models)', async () => {
      const problems: string[] = []
      for (const o of objects) {
        const Model = await modelOf(o.apiVersion, o.kind)
        if (!Model) {
          problems.push(`no schema for ${o.apiVersion} ${o.kind}`)
          continue
        }
        try {
          new Model(o).validate()
        } catch (error) {
          problems.push(`${o.kind}/${o.metadata.name}: ${(error as Error).message}`)
        }
      }
      expect(problems).toEqual([])
    })

    it('object names are unique per kind', () => {
      const keys = objects.map((o) => `${o.kind}/${o.metadata.name}`)
      expect(keys.filter((k, i) => keys.indexOf(k) !== i)).toEqual([])
    })

    it('every Deployment and StatefulSet has probes, requests and limits, and runs as non-root', () => {
      const problems: string[] = []
      const workloads = objects.filter((o) => WORKLOAD_KINDS.includes(o.kind))
      expect(workloads.length).toBeGreaterThanOrEqual(7)
      for (const w of workloads) {
        const pod = podSpec(w)
        for (const c of pod.containers) {
          const at = `${w.kind}/${w.metadata.name} container ${c.name}`
          if (!c.readinessProbe) problems.push(`${at}: no readinessProbe`)
          if (!c.livenessProbe) problems.push(`${at}: no livenessProbe`)
          for (const kind of ['requests', 'limits']) {
            for (const resource of ['cpu', 'memory']) if (!c.resources?.[kind]?.[resource]) problems.push(`${at}: no resources.${kind}.${resource}`)
          }
          const nonRoot = c.securityContext?.runAsNonRoot ?? pod.securityContext?.runAsNonRoot
          const uid = c.securityContext?.runAsUser ?? pod.securityContext?.runAsUser
          if (nonRoot !== true) problems.push(`${at}: runAsNonRoot is not true`)
          if (typeof uid !== 'number' || uid === 0) problems.push(`${at}: no numeric non-zero runAsUser (${uid})`)
          if (c.securityContext?.allowPrivilegeEscalation !== false) problems.push(`${at}: allowPrivilegeEscalation is not false`)
        }
      }
      expect(problems).toEqual([])
    })

    it('the hook Jobs run as non-root with resources, outside the mesh', () => {
      const jobs = byKind(objects, 'Job')
      expect(jobs.map((j) => j.metadata.name).sort()).toEqual(['cinemaabyss-kafka-topics', 'cinemaabyss-migrate', 'cinemaabyss-migrate-catalog'])
      for (const job of jobs) {
        expect(job.metadata.annotations?.['helm.sh/hook']).toBe('post-install,post-upgrade')
        expect(job.spec.template.metadata.annotations['sidecar.istio.io/inject']).toBe('false')
        const pod = podSpec(job)
        expect(pod.securityContext.runAsNonRoot).toBe(true)
        for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
          expect(c.resources.limits, `${job.metadata.name}/${c.name}`).toBeDefined()
          expect(c.resources.requests, `${job.metadata.name}/${c.name}`).toBeDefined()
        }
      }
      const migrate = podSpec(find(objects, 'Job', 'cinemaabyss-migrate')).containers[0]
      expect(migrate.command).toEqual(['node', 'lib/db/migrate-cli.ts'])
      expect(migrate.volumeMounts ?? []).toEqual([])
    })

    it('the four services: readiness /ready, liveness on their health path, rolling updates, read-only root', () => {
      for (const svc of SERVICES) {
        const deployment = find(objects, 'Deployment', svc.name)
        const c = podSpec(deployment).containers[0]
        expect(c.readinessProbe.httpGet.path).toBe('/ready')
        expect(svc.healthPaths).toContain(c.livenessProbe.httpGet.path)
        expect(svc.healthPaths).toContain(c.startupProbe.httpGet.path)
        expect(c.readinessProbe.httpGet.port).toBe('http')
        // The proxy has a second port: its operators' listener (admin API, console, /metrics).
        expect(c.ports).toEqual([expect.objectContaining({ name: 'http' }), ...(svc.name === 'proxy-service' ? [expect.objectContaining({ name: 'ops', containerPort: 9000 })] : [])])
        expect(deployment.spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } })
        expect(c.securityContext.readOnlyRootFilesystem).toBe(true)
        // Nothing writes at run time (no transpiler cache): no /tmp volume.
        expect(c.volumeMounts ?? []).not.toContainEqual(expect.objectContaining({ mountPath: '/tmp' }))
        expect(c.command).toBeUndefined() // the image's CMD: node <service>/server.ts
        expect(c.image).toMatch(new RegExp(`/cinemaabyss-${svc.name === 'proxy-service' ? 'proxy' : svc.name}:0\\.1\\.0$`))
        // The Service of the same name reaches the container port.
        const service = find(objects, 'Service', svc.name)
        expect(service.spec.ports[0].targetPort).toBe('http')
        if (svc.name === 'proxy-service') expect(service.spec.ports[1]).toMatchObject({ name: 'ops', port: 9000, targetPort: 'ops' })
        expect(deployment.spec.template.metadata.annotations['prometheus.io/port']).toBe(svc.name === 'proxy-service' ? '9000' : String(c.ports[0].containerPort))
        expect(service.spec.selector).toEqual(deployment.spec.selector.matchLabels)
        expect(deployment.spec.template.metadata.labels).toMatchObject(deployment.spec.selector.matchLabels)
      }
    })

    it('no image is latest or untagged', () => {
      const bad = allContainers(objects)
        .map(({ owner, container }) => `${owner}: ${container.image}`)
        .filter((line) => {
          const image = line.split(': ')[1]!
          const tag = image.includes(':') && !image.endsWith(':') ? image.slice(image.lastIndexOf(':') + 1) : ''
          return tag === '' || tag.includes('/') || tag === 'latest'
        })
      expect(bad).toEqual([])
    })

    it('the proxy is exposed on cinemaabyss.example.com, autoscaled and protected by a PodDisruptionBudget', () => {
      const ingress = find(objects, 'Ingress', 'cinemaabyss')
      expect(ingress.spec.rules[0].host).toBe('cinemaabyss.example.com')
      expect(ingress.spec.rules[0].http.paths[0].backend.service).toEqual({ name: 'proxy-service', port: { number: 8000 } })
      // The client API only: /metrics, /documentation, /health, /ready and /admin stay inside the cluster.
      expect(ingress.spec.rules.flatMap((r: K8sObject) => r.http.paths.map((p: K8sObject) => `${p.pathType} ${p.path}`))).toEqual(['Prefix /api'])
      const hpa = find(objects, 'HorizontalPodAutoscaler', 'proxy-service')
      expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'proxy-service' })
      expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2)
      // The HPA owns the replica count: the Deployment must not fight it on every upgrade.
      expect(find(objects, 'Deployment', 'proxy-service').spec.replicas).toBeUndefined()
      const pdb = find(objects, 'PodDisruptionBudget', 'proxy-service')
      expect(pdb.spec.selector.matchLabels).toEqual(find(objects, 'Deployment', 'proxy-service').spec.selector.matchLabels)
    })

    it('the operational endpoints reach the Ingress only through the documented switch ingress.exposeOperational', () => {
      const paths = (objs: K8sObject[]) => find(objs, 'Ingress', 'cinemaabyss').spec.rules[0].http.paths.map((p: K8sObject) => p.path)
      expect(paths(objects)).toEqual(['/api'])
      expect(paths(renderChart(['--set', 'ingress.exposeOperational=true']))).toEqual(['/'])
      expect(readRepoFile('k8s/cinemaabyss/values.yaml')).toMatch(/exposeOperational: false/)
      expect(readRepoFile('k8s/README.md')).toContain('ingress.exposeOperational')
    })

    it('Redis keeps the ledger, ramps and fencing counters: append-only file on a persistent volume, volatile-lru', () => {
      const redis = find(objects, 'StatefulSet', 'redis')
      const c = podSpec(redis).containers[0]
      const arg = (name: string) => c.args[c.args.indexOf(`--${name}`) + 1]
      expect(arg('appendonly')).toBe('yes')
      expect(arg('maxmemory-policy')).toBe('volatile-lru')
      expect(c.volumeMounts).toContainEqual({ name: 'data', mountPath: '/data' })
      expect(podSpec(redis).volumes ?? []).toEqual([]) // no emptyDir: the claim below
      expect(redis.spec.volumeClaimTemplates[0].metadata.name).toBe('data')
      expect(redis.spec.volumeClaimTemplates[0].spec.resources.requests.storage).toBe('1Gi')
    })

    it('PostgreSQL (legacy-db and catalog-db) and Kafka (KRaft) keep their data on volumes; Kafka has no ZooKeeper', () => {
      for (const name of ['postgres', 'catalog-db', 'kafka']) {
        const sts = find(objects, 'StatefulSet', name)
        expect(sts.spec.volumeClaimTemplates[0].metadata.name).toBe('data')
        expect(podSpec(sts).containers[0].volumeMounts).toContainEqual(expect.objectContaining({ name: 'data' }))
      }
      const kafka = podSpec(find(objects, 'StatefulSet', 'kafka'))
      const env = Object.fromEntries(kafka.containers[0].env.map((e: any) => [e.name, e.value]))
      expect(kafka.containers[0].image).toMatch(/^apache\/kafka:3\.9\.\d+$/)
      expect(env.KAFKA_PROCESS_ROLES).toBe('broker,controller')
      expect(Buffer.from(env.CLUSTER_ID, 'base64url')).toHaveLength(16)
      expect(Object.keys(env).filter((k) => /ZOOKEEPER/.test(k))).toEqual([])
      // Service links would inject KAFKA_PORT=tcp://... which the image turns into a broker property.
      expect(kafka.enableServiceLinks).toBe(false)
    })
  })
}

describe('Istio (istio.enabled)', () => {
  const demoValues = () => renderChart(RENDER_VARIANTS['istio task-5 demo values'])

  it('is off by default', () => {
    const kinds = renderChart().map((o) => o.kind)
    expect(kinds).not.toContain('DestinationRule')
    expect(kinds).not.toContain('VirtualService')
  })

  it('DestinationRules with connectionPool and outlierDetection for monolith and movies-service', () => {
    const objects = renderChart(RENDER_VARIANTS['istio + observability'])
    const rules = byKind(objects, 'DestinationRule')
    expect(rules.map((r) => r.spec.host).sort()).toEqual(['monolith.cinemaabyss.svc.cluster.local', 'movies-service.cinemaabyss.svc.cluster.local'])
    for (const rule of rules) {
      const { connectionPool, outlierDetection } = rule.spec.trafficPolicy
      expect(connectionPool.tcp.maxConnections).toBeGreaterThan(0)
      expect(connectionPool.http.http1MaxPendingRequests).toBeGreaterThan(0)
      expect(outlierDetection).toMatchObject({ consecutive5xxErrors: expect.any(Number), interval: expect.any(String), baseEjectionTime: expect.any(String) })
    }
    const services = byKind(objects, 'VirtualService')
    expect(services.map((v) => v.metadata.name).sort()).toEqual(['monolith', 'movies-service'])
    for (const vs of services) expect(vs.spec.http[0].timeout).toBe('5s')
    expect(find(objects, 'Deployment', 'fortio').spec.template.spec.containers[0].image).toMatch(/^fortio\/fortio:\d+\.\d+\.\d+$/)
  })

  it('values-istio-demo.yaml has the task-5 limits, and the kubectl file k8s/istio/circuit-breaker-config.yaml matches it', async () => {
    const fromChart = Object.fromEntries(byKind(demoValues(), 'DestinationRule').map((r) => [r.metadata.name, r.spec.trafficPolicy]))
    expect(fromChart['movies-service-circuit-breaker'].connectionPool).toMatchObject({
      tcp: { maxConnections: 1 },
      http: { http1MaxPendingRequests: 1, maxRequestsPerConnection: 1 },
    })
    expect(fromChart['movies-service-circuit-breaker'].outlierDetection).toEqual({
      consecutive5xxErrors: 1,
      interval: '1s',
      baseEjectionTime: '3m',
      maxEjectionPercent: 100,
    })
    for (const vs of byKind(demoValues(), 'VirtualService')) expect(vs.spec.http[0].retries).toEqual({ attempts: 0 })

    const file = parseAllDocuments(readRepoFile('k8s/istio/circuit-breaker-config.yaml')).map((d) => d.toJS() as K8sObject)
    const rules = file.filter((o) => o.kind === 'DestinationRule')
    expect(rules.map((r) => r.spec.host).sort()).toEqual(['monolith', 'movies-service'])
    for (const rule of rules) {
      // Same names as the chart's: applying the file over a chart install updates, never duplicates.
      expect(fromChart[rule.metadata.name], rule.metadata.name).toBeDefined()
      expect(rule.spec.trafficPolicy.connectionPool).toMatchObject({ tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1, maxRequestsPerConnection: 1 } })
      expect(rule.spec.trafficPolicy.outlierDetection).toEqual(fromChart[rule.metadata.name].outlierDetection)
    }
    for (const o of file) {
      const Model = await modelOf(o.apiVersion, o.kind)
      expect(Model, `${o.apiVersion} ${o.kind}`).toBeDefined()
      expect(() => new Model!(o).validate()).not.toThrow()
    }
  })
})

describe('observability (observability.enabled)', () => {
  it('a ServiceMonitor for the four services, the PrometheusRule alerts and the Grafana dashboard ConfigMap', () => {
    const objects = renderChart(RENDER_VARIANTS['istio + observability'])
    const monitor = find(objects, 'ServiceMonitor', 'cinemaabyss')
    expect(monitor.spec.endpoints[0]).toMatchObject({ port: 'http', path: '/metrics' })
    // The proxy's /metrics is on its operators' port only.
    expect(monitor.spec.endpoints[0].relabelings[0]).toEqual({ sourceLabels: ['__meta_kubernetes_service_name'], regex: 'proxy-service', action: 'drop' })
    expect(monitor.spec.endpoints[1]).toMatchObject({ port: 'ops', path: '/metrics' })
    const selected = monitor.spec.selector.matchExpressions.find((e: any) => e.key === 'app.kubernetes.io/name').values
    expect([...selected].sort()).toEqual(SERVICES.map((s) => s.name).sort())
    for (const svc of SERVICES) expect(find(objects, 'Service', svc.name).metadata.labels?.['app.kubernetes.io/name']).toBe(svc.name)

    const alerts = find(objects, 'PrometheusRule', 'cinemaabyss').spec.groups.flatMap((g: any) => g.rules)
    const byName = Object.fromEntries(alerts.map((r: any) => [r.alert, r]))
    expect(byName.ProxyBreakerOpen).toMatchObject({ for: '1m' })
    expect(byName.ProxyBreakerOpen.expr).toContain('proxy_breaker_state')
    expect(byName.ProxyLegacyFallbackRate.expr).toContain('proxy_legacy_fallbacks_total')
    expect(byName.ProxyUpstream5xxRate.expr).toMatch(/status_class="5xx"[\s\S]*by \(upstream\)|by \(upstream\)[\s\S]*status_class="5xx"/)
    // Rendered through .Files.Get: the Prometheus templates in annotations survive untouched.
    expect(byName.ProxyBreakerOpen.annotations.summary).toContain('{{ $labels.upstream }}')

    const dashboard = find(objects, 'ConfigMap', 'cinemaabyss-grafana-dashboard')
    expect(dashboard.metadata.labels?.grafana_dashboard).toBe('1')
    expect(JSON.parse(dashboard.data!['cinemaabyss-edge.json']!)).toEqual(JSON.parse(readRepoFile(`${CHART_DIR}/files/grafana-dashboard.json`)))
  })

  it('is off by default (the CRDs may not exist)', () => {
    const kinds = renderChart().map((o) => o.kind)
    expect(kinds).not.toContain('ServiceMonitor')
    expect(kinds).not.toContain('PrometheusRule')
  })
})

describe('client identity (proxy.trustProxy) and the NetworkPolicy', () => {
  const proxyConfig = (objects: K8sObject[]) => chartEnvLocally(objects, find(objects, 'Deployment', 'proxy-service'))
  const loadProxyConfig = SERVICES.find((s) => s.name === 'proxy-service')!.loadConfig

  it('by default trusts one hop (the Ingress controller) and lets only it, and Prometheus, reach the proxy pods', () => {
    const objects = renderChart()
    expect(proxyConfig(objects).TRUST_PROXY).toBe('1')
    expect((loadProxyConfig(proxyConfig(objects)) as { trustProxy: unknown }).trustProxy).toBe(1)
    const policy = find(objects, 'NetworkPolicy', 'proxy-service-ingress-only')
    const proxyPods = find(objects, 'Deployment', 'proxy-service').spec.template.metadata.labels
    for (const [k, v] of Object.entries(policy.spec.podSelector.matchLabels)) expect(proxyPods[k]).toBe(v)
    expect(policy.spec.policyTypes).toEqual(['Ingress'])
    expect(policy.spec.ingress).toEqual([
      {
        from: [
          { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } } },
          { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } },
        ],
        ports: [{ protocol: 'TCP', port: 8000 }],
      },
    ])
  })

  it('trusts nobody and renders no NetworkPolicy with trustProxy=false; addresses/CIDRs pass through', () => {
    const off = renderChart(['--set', 'proxy.trustProxy=false'])
    expect(proxyConfig(off).TRUST_PROXY).toBe('false')
    // No Ingress-only policy; the default-deny set lets anyone reach the proxy port instead.
    expect(byKind(off, 'NetworkPolicy').map((o) => o.metadata.name)).not.toContain('proxy-service-ingress-only')
    expect(find(off, 'NetworkPolicy', 'proxy-service-from-callers').spec.ingress).toEqual([{ ports: [{ protocol: 'TCP', port: 8000 }] }])
    const cidrs = renderChart(['--set-string', 'proxy.trustProxy=10.0.0.0/8\\,192.168.0.0/16', '--set', 'proxy.networkPolicy.ingressControllerNamespace=istio-system'])
    expect((loadProxyConfig(proxyConfig(cidrs)) as { trustProxy: unknown }).trustProxy).toEqual(['10.0.0.0/8', '192.168.0.0/16'])
    expect(find(cidrs, 'NetworkPolicy', 'proxy-service-ingress-only').spec.ingress[0].from[0].namespaceSelector.matchLabels).toEqual({ 'kubernetes.io/metadata.name': 'istio-system' })
    const switchedOff = renderChart(['--set', 'proxy.networkPolicy.enabled=false', '--set', 'networkPolicies.enabled=false'])
    expect(switchedOff.map((o) => o.kind)).not.toContain('NetworkPolicy')
  })
})

describe('Unleash', () => {
  it('imports the flags of flags/ (the chart carries an identical copy)', () => {
    const copy = readFileSync(join(REPO_ROOT, CHART_DIR, 'files/unleash-flags.json'), 'utf8')
    expect(JSON.parse(copy)).toEqual(JSON.parse(readRepoFile('flags/flags.json')))
    const objects = renderChart()
    const flags = find(objects, 'ConfigMap', 'unleash-flags').data!['unleash-flags.json']!
    expect(JSON.parse(flags).features.map((f: any) => f.name)).toContain('movies-migration')
    const env = podSpec(find(objects, 'Deployment', 'unleash')).containers[0].env
    expect(env).toContainEqual({ name: 'IMPORT_FILE', value: '/flags/unleash-flags.json' })
  })
})

describe('no default secret runs (issue 32)', () => {
  const render = (args: string[]) => runHelm(['template', 'cinemaabyss', CHART_DIR, ...args])

  it('refuses to render with a placeholder or short secret, naming the value', () => {
    for (const [key, value] of [
      ['postgresPassword', 'change-me-postgres'],
      ['catalogDbPassword', 'CHANGE_ME_catalog_password'],
      ['redisPassword', 'changeme-redis-0123456789'],
      ['kafkaPassword', 'password'],
      ['internalToken', 'placeholder-internal-token-0123'],
      ['unleashAdminPassword', 'change-me-unleash-admin'],
      ['unleashBackendToken', '*:development.change-me-unleash-backend-token'],
      ['unleashAdminToken', '*:*.change-me-unleash-admin-token'],
      ['proxyAdminToken', 'change-me-proxy-admin-token'],
      ['redisPassword', 'short'],
    ]) {
      const result = render(['--set-string', `secrets.${key}=${value}`])
      expect(result.status, `${key}=${value}`).not.toBe(0)
      expect(result.stderr, `${key}=${value}`).toMatch(new RegExp(`secrets\\.${key}`))
    }
    expect(render(['--set-string', 'secrets.proxyAdminTokens=alice:change-me-alice-token']).status).not.toBe(0)
  })

  it('generates every secret left empty, none of them a known value, each of its own', () => {
    const objects = renderChart()
    const secret = find(objects, 'Secret', 'cinemaabyss-secrets')
    const data = secret.stringData!
    const generated = ['POSTGRES_PASSWORD', 'CATALOG_DB_PASSWORD', 'REDIS_PASSWORD', 'KAFKA_SASL_PASSWORD', 'INTERNAL_TOKEN', 'UNLEASH_ADMIN_PASSWORD', 'ADMIN_TOKEN']
    for (const key of generated) expect(data[key], key).toMatch(/^[A-Za-z0-9]{40}$/)
    expect(new Set(generated.map((k) => data[k])).size).toBe(generated.length)
    expect(data.UNLEASH_API_TOKEN).toMatch(/^\*:development\.[A-Za-z0-9]{40}$/)
    expect(data.UNLEASH_ADMIN_TOKEN).toMatch(/^\*:\*\.[A-Za-z0-9]{40}$/)
    expect(JSON.stringify(data)).not.toMatch(/change-me/i)
    // Kept across upgrades: read back from the Secret in the cluster (lookup), and kept on uninstall.
    expect(readRepoFile(`${CHART_DIR}/templates/secret.yaml`)).toMatch(/lookup "v1" "Secret" .Release.Namespace/)
    expect(secret.metadata.annotations?.['helm.sh/resource-policy']).toBe('keep')
    // A value given is used as given.
    const given = renderChart(['--set-string', 'secrets.redisPassword=Given0123456789abcdefXYZ'])
    expect(find(given, 'Secret', 'cinemaabyss-secrets').stringData!.REDIS_URL).toBe('redis://:Given0123456789abcdefXYZ@redis:6379')
  })

  it('Redis asks for the password the services\' REDIS_URL carries; Kafka clients log in with SCRAM; /internal has its token', () => {
    const objects = renderChart()
    const redis = podSpec(find(objects, 'StatefulSet', 'redis')).containers[0]
    expect(redis.args.slice(-2)).toEqual(['--requirepass', '$(REDIS_PASSWORD)'])
    expect(redis.env.find((e: any) => e.name === 'REDIS_PASSWORD').valueFrom.secretKeyRef.key).toBe('REDIS_PASSWORD')
    const password = find(objects, 'Secret', 'cinemaabyss-secrets').stringData!.REDIS_PASSWORD
    const env = (name: string) => chartEnvLocally(objects, find(objects, 'Deployment', name))
    for (const name of ['proxy-service', 'movies-service']) expect(new URL(env(name).REDIS_URL!).password, name).toBe(password)
    for (const name of ['monolith', 'movies-service', 'events-service']) {
      expect(env(name), name).toMatchObject({ KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'cinemaabyss' })
      expect(env(name).KAFKA_SASL_PASSWORD, name).toMatch(/^[A-Za-z0-9]{40}$/)
    }
    const tokens = new Set(['monolith', 'movies-service', 'events-service', 'proxy-service'].map((name) => env(name).INTERNAL_TOKEN))
    expect([...tokens]).toHaveLength(1)
    expect([...tokens][0]).toMatch(/^[A-Za-z0-9]{40}$/)
    const kafka = Object.fromEntries(podSpec(find(objects, 'StatefulSet', 'kafka')).containers[0].env.map((e: any) => [e.name, e.value]))
    expect(kafka.KAFKA_LISTENERS).toBe('SASL_PLAINTEXT://:9092,CONTROLLER://:9093,INTERNAL://:9094')
    expect(kafka.KAFKA_SASL_ENABLED_MECHANISMS).toBe('SCRAM-SHA-512')
  })
})

describe('default-deny NetworkPolicies (issue 32)', () => {
  /** Who may open a connection to `target` on `port`, by the pods' app.kubernetes.io/name (or "namespace:X", or "anyone"). */
  function callers(objects: K8sObject[], target: string, port: number): string[] {
    const who: string[] = []
    for (const policy of byKind(objects, 'NetworkPolicy')) {
      const selector = policy.spec.podSelector.matchLabels ?? {}
      if (Object.keys(selector).length > 0 && selector['app.kubernetes.io/name'] !== target) continue
      for (const rule of policy.spec.ingress ?? []) {
        if (rule.ports && !rule.ports.some((p: any) => p.port === port)) continue
        if (!rule.from) who.push('anyone')
        for (const peer of rule.from ?? []) {
          if (peer.podSelector) who.push(peer.podSelector.matchLabels['app.kubernetes.io/name'])
          else if (peer.namespaceSelector) who.push(`namespace:${peer.namespaceSelector.matchLabels['kubernetes.io/metadata.name']}`)
        }
      }
    }
    return [...new Set(who)].sort()
  }

  it('denies every ingress to every pod of the namespace unless a policy lets the caller in', () => {
    const objects = renderChart()
    const deny = find(objects, 'NetworkPolicy', 'default-deny-ingress')
    expect(deny.spec).toEqual({ podSelector: {}, policyTypes: ['Ingress'] })
    for (const policy of byKind(objects, 'NetworkPolicy')) {
      expect(policy.spec.policyTypes, policy.metadata.name).toEqual(['Ingress'])
      // Every allow names its port: nothing is opened wholesale.
      for (const rule of policy.spec.ingress ?? []) expect(rule.ports?.length, policy.metadata.name).toBeGreaterThan(0)
    }
  })

  it('lets each component be reached only by those that need it', () => {
    const objects = renderChart()
    expect(callers(objects, 'proxy-service', 8000)).toEqual(['namespace:ingress-nginx', 'namespace:monitoring'])
    // The operators' listener: Prometheus only (operators come through kubectl port-forward).
    expect(callers(objects, 'proxy-service', 9000)).toEqual(['namespace:monitoring'])
    expect(callers(objects, 'monolith', 8080)).toEqual(['namespace:monitoring', 'proxy-service'])
    expect(callers(objects, 'movies-service', 8081)).toEqual(['namespace:monitoring', 'proxy-service'])
    expect(callers(objects, 'events-service', 8082)).toEqual(['namespace:monitoring', 'proxy-service'])
    expect(callers(objects, 'postgres', 5432)).toEqual(['migrate', 'monolith', 'unleash'])
    expect(callers(objects, 'catalog-db', 5432)).toEqual(['migrate-catalog', 'movies-service'])
    expect(callers(objects, 'kafka', 9092)).toEqual(['events-service', 'monolith', 'movies-service'])
    expect(callers(objects, 'kafka', 9094)).toEqual(['kafka', 'kafka-topics'])
    expect(callers(objects, 'redis', 6379)).toEqual(['movies-service', 'proxy-service'])
    expect(callers(objects, 'unleash', 4242)).toEqual(['proxy-service'])
    // A port no policy names is closed to everyone, e.g. the KRaft controller and Redis on another port.
    expect(callers(objects, 'kafka', 9093)).toEqual([])
    // Each selector matches the pods it means (same labels as the workload's pod template).
    for (const name of ['monolith', 'postgres', 'redis', 'kafka']) {
      const kind = ['postgres', 'redis', 'kafka'].includes(name) ? 'StatefulSet' : 'Deployment'
      const podLabels = find(objects, kind, name).spec.template.metadata.labels
      const policy = byKind(objects, 'NetworkPolicy').find((p) => p.metadata.name === `${name}-from-callers`)!
      for (const [k, v] of Object.entries(policy.spec.podSelector.matchLabels)) expect(podLabels[k], `${name} ${k}`).toBe(v)
    }
  })

  it('Istio\'s fortio may load monolith and movies-service directly; without Unleash no Unleash policy', () => {
    const istio = renderChart(RENDER_VARIANTS['istio task-5 demo values'])
    expect(callers(istio, 'monolith', 8080)).toContain('fortio')
    expect(callers(istio, 'events-service', 8082)).not.toContain('fortio')
    const noUnleash = renderChart(RENDER_VARIANTS['without Unleash, legacy pair pinned'])
    expect(byKind(noUnleash, 'NetworkPolicy').map((p) => p.metadata.name)).not.toContain('unleash-from-callers')
  })
})
