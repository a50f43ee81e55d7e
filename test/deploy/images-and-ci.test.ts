// The Dockerfile (one target per service, non-root, HEALTHCHECK, pinned base), the GitHub
// Actions workflow (runs .ci/run, the README test command; pushes the images the chart uses)
// and the metric names the dashboard and the alerts query (they must exist in the services).
import { builtinModules } from 'node:module'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { createMetrics as createEventsMetrics } from '../../events-service/metrics.ts'
import { createMetrics as createProxyMetrics } from '../../proxy/observability/metrics.ts'
import { createOutboxMetrics } from '../../lib/outbox/metrics.ts'
import { Registry } from 'prom-client'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { freePort } from '../../dev/free-port.ts'
import { waitForHttp } from '../../dev/wait-for-http.ts'
import { createLogger } from '../../lib/logger.ts'
import { createReplicaMetrics } from '../../lib/replication/metrics.ts'
import { createParityMonitor } from '../../proxy/rollout/parity/parity-monitor.ts'
import { CHART_DIR, REPO_ROOT, SERVICES, readRepoFile } from './support.ts'

/** What each service needs to start and answer /health (its dependencies unreachable, on purpose). */
const PLAIN_NODE_ENV = {
  MONOLITH_URL: 'http://127.0.0.1:9',
  MOVIES_SERVICE_URL: 'http://127.0.0.1:9',
  EVENTS_SERVICE_URL: 'http://127.0.0.1:9',
  KAFKA_BROKERS: '127.0.0.1:9',
  DB_CONNECTION_STRING: 'postgres://postgres:postgres@127.0.0.1:9/cinemaabyss',
  ADMIN_TOKEN: 'plain-node-start-admin-token',
}

interface Stage {
  name: string
  from: string
  lines: string[]
}

/** The Dockerfile's stages, continuation lines joined, comments dropped. */
function dockerStages(): { args: Record<string, string>; stages: Stage[] } {
  const lines = readRepoFile('Dockerfile')
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
  const args: Record<string, string> = {}
  const stages: Stage[] = []
  for (const line of lines) {
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?$/i.exec(line)
    if (from) stages.push({ from: from[1]!, name: from[2] ?? '', lines: [] })
    else if (stages.length === 0 && /^ARG\s+(\w+)=(\S+)$/.test(line)) {
      const [, k, v] = /^ARG\s+(\w+)=(\S+)$/.exec(line)!
      args[k!] = v!
    } else stages.at(-1)?.lines.push(line)
  }
  return { args, stages }
}

/** The Dockerfile target of a service (the proxy's is "proxy"). */
const targetOf = (service: string) => (service === 'proxy-service' ? 'proxy' : service)

describe('Dockerfile', () => {
  const { args, stages } = dockerStages()
  const stage = (name: string) => {
    const s = stages.find((x) => x.name === name)
    if (!s) throw new Error(`no stage ${name}`)
    return s
  }
  /** A stage's lines with those of the stages it builds on. */
  const inherited = (name: string): string[] => {
    const s = stage(name)
    return stages.some((x) => x.name === s.from) ? [...inherited(s.from), ...s.lines] : s.lines
  }

  it('the base image is pinned to a Node 24 LTS release (no latest), the one .ci/run tests on', () => {
    expect(args.NODE_IMAGE).toMatch(/^node:24\.\d+\.\d+-alpine[\d.]*$/)
    const ciNode = /^NODE24_VERSION=(\S+)$/m.exec(readRepoFile('.ci/run'))
    expect(ciNode?.[1]).toBe(/^node:([\d.]+)-/.exec(args.NODE_IMAGE)![1])
    for (const s of stages) expect(s.from === '${NODE_IMAGE}' || stages.some((x) => x.name === s.from), s.name).toBe(true)
  })

  it('type-checks in a build stage; the runtime holds production dependencies only', () => {
    expect(stage('build').lines).toContain('RUN npx tsc -p tsconfig.json --noEmit')
    expect(stage('prod-deps').lines.join('\n')).toContain('npm ci --omit=dev')
    expect(stage('runtime').lines.join('\n')).toContain('COPY --from=prod-deps')
    expect(stage('runtime').lines.join('\n')).not.toMatch(/COPY --from=deps\b/)
  })

  for (const svc of SERVICES) {
    it(`target ${targetOf(svc.name)}: non-root, PORT, HEALTHCHECK on /health, runs ${svc.entry}`, () => {
      const lines = inherited(targetOf(svc.name))
      const user = lines.filter((l) => l.startsWith('USER ')).at(-1)
      expect(user).toBeDefined()
      expect(user).not.toMatch(/^USER (root|0)(:|$)/)
      const port = lines.find((l) => l.startsWith('ENV PORT='))?.split('=')[1]
      expect(Number(port)).toBe(Number((svc.loadConfig({}) as { port: number }).port))
      expect(lines).toContain(`EXPOSE ${port}`)
      const healthcheck = lines.find((l) => l.startsWith('HEALTHCHECK'))
      expect(healthcheck).toContain("process.env.PORT+'/health'")
      expect(svc.healthPaths).toContain('/health')
      // Plain node: Node 24 runs the TypeScript itself (type stripping), no loader, no transpiler.
      expect(lines.filter((l) => l.startsWith('CMD ')).at(-1)).toBe(`CMD ["node", "${svc.entry}"]`)
      // The entry point and its sources are copied into the runtime stage.
      expect(stage('runtime').lines).toContain(`COPY --from=build --chown=root:root /app/${svc.entry.split('/')[0]} ./${svc.entry.split('/')[0]}`)
    })
  }

  it('no transpiler at run time: tsx is no dependency, the sources use erasable syntax only', () => {
    const pkg = JSON.parse(readRepoFile('package.json'))
    expect(pkg.dependencies.tsx).toBeUndefined()
    expect(pkg.devDependencies.tsx).toBeUndefined()
    expect(readRepoFile('Dockerfile')).not.toMatch(/\btsx\b/)
    const tsconfig = JSON.parse(readRepoFile('tsconfig.json'))
    expect(tsconfig.compilerOptions).toMatchObject({ erasableSyntaxOnly: true, verbatimModuleSyntax: true })
    for (const [name, script] of Object.entries(pkg.scripts as Record<string, string>)) expect(script, name).not.toMatch(/\btsx\b/)
  })

  for (const svc of SERVICES) {
    it(`target ${targetOf(svc.name)}: its CMD, run with plain node, starts ${svc.entry} (/health answers)`, async () => {
      const cmd = JSON.parse(inherited(targetOf(svc.name)).filter((l) => l.startsWith('CMD ')).at(-1)!.slice(4)) as string[]
      expect(cmd[0]).toBe('node')
      const port = await freePort()
      // This test's own Node binary, nothing in NODE_OPTIONS: what the image's node would run.
      const child = spawn(process.execPath, cmd.slice(1), {
        cwd: REPO_ROOT,
        env: { PATH: process.env.PATH ?? '', PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...PLAIN_NODE_ENV },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let output = ''
      child.stdout!.on('data', (d) => (output += d))
      child.stderr!.on('data', (d) => (output += d))
      const exited = once(child, 'exit')
      try {
        await waitForHttp(`http://127.0.0.1:${port}/health`, { timeoutMs: 60_000, isAlive: () => child.exitCode === null })
      } catch (error) {
        throw new Error(`${String(error)}\n${output}`, { cause: error })
      } finally {
        child.kill('SIGTERM')
        await exited
      }
      expect(output).not.toMatch(/ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX|ExperimentalWarning/)
    }, 90_000)
  }

  it('the runtime stage has every package the service sources import (dependencies, not devDependencies)', () => {
    const pkg = JSON.parse(readRepoFile('package.json'))
    const sources = ['lib', ...SERVICES.map((s) => s.entry.split('/')[0]!)].flatMap((dir) =>
      (readdirSync(join(REPO_ROOT, dir), { recursive: true }) as string[]).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts')).map((f) => `${dir}/${f}`),
    )
    expect(sources.length).toBeGreaterThan(20)
    const missing = new Set<string>()
    for (const file of sources) {
      const text = readRepoFile(file)
      for (const m of text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|\brequire\s*\(\s*|^import\s+)'([^'.][^']*)'/gm)) {
        const spec = m[1]!
        if (spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0]!)) continue
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!
        if (!pkg.dependencies[name]) missing.add(`${name} (${file})`)
      }
    }
    expect([...missing]).toEqual([])
  })

  it('.dockerignore lets in only what the image needs', () => {
    const ignore = readRepoFile('.dockerignore').split('\n').filter((l) => l && !l.startsWith('#'))
    expect(ignore[0]).toBe('*')
    for (const path of ['package.json', 'package-lock.json', 'tsconfig.json', 'lib/', 'flags/']) expect(ignore).toContain(`!${path}`)
    for (const svc of SERVICES) expect(ignore).toContain(`!${svc.entry.split('/')[0]}/`)
  })
})

describe('GitHub Actions workflow', () => {
  const workflow = parse(readRepoFile('.github/workflows/ci.yml'))

  it('parses, and its test job runs .ci/run, which runs the README test command (npm test)', () => {
    const steps: { run?: string; uses?: string }[] = workflow.jobs.test.steps
    expect(steps.filter((s) => s.run?.trim() === 'bash .ci/run')).toHaveLength(1)
    const ciRun = readRepoFile('.ci/run')
    const ciLines = ciRun.split('\n').map((l) => l.trim())
    expect(ciLines).toContain('npm test')
    // Node 24 leads PATH before npm ci when the machine's is older: everything runs on the baseline.
    expect(ciRun.indexOf('export PATH="$node24:$PATH"')).toBeGreaterThan(0)
    expect(ciRun.indexOf('export PATH="$node24:$PATH"')).toBeLessThan(ciRun.indexOf('\nnpm ci --no-audit'))
    expect(JSON.parse(readRepoFile('package.json')).engines.node).toBe('>=24')
    // npm test = types, lint, then the suite: a type error or a lint finding fails CI.
    const scripts = JSON.parse(readRepoFile('package.json')).scripts
    expect(scripts.test).toBe('npm run typecheck && npm run lint && vitest run')
    expect(scripts.typecheck).toBe('tsc -p tsconfig.json --noEmit')
    expect(scripts.lint).toBe('eslint .')
    // Same machine as CI and the developers: Debian 12, root, Node 24, Go for Helm.
    expect(workflow.jobs.test.container.image).toMatch(/^debian:12\.\d+$/)
    expect(steps.find((s) => s.uses?.startsWith('actions/setup-node@'))).toMatchObject({ with: { 'node-version': 24 } })
    expect(steps.some((s) => s.uses?.startsWith('actions/setup-go@'))).toBe(true)
    expect(workflow.on.push.branches).toEqual(['main'])
    expect(workflow.on).toHaveProperty('pull_request')
  })

  it('every action is at a major that runs on Node 24 (their Node 20 majors are deprecated)', () => {
    // The first major of each whose action.yml says `using: node24`.
    const node24Major: Record<string, number> = {
      'actions/checkout': 5, 'actions/setup-node': 5, 'actions/setup-go': 6, 'actions/cache': 5,
      'docker/setup-buildx-action': 4, 'docker/login-action': 4, 'docker/build-push-action': 7,
    }
    const uses = Object.values(workflow.jobs as Record<string, { steps: { uses?: string }[] }>).flatMap((job) => job.steps.flatMap((s) => (s.uses ? [s.uses] : [])))
    expect(uses.length).toBeGreaterThan(5)
    for (const use of uses) {
      const [action, version] = use.split('@') as [string, string]
      expect(node24Major[action], `${action} is known`).toBeDefined()
      expect(Number(/^v(\d+)/.exec(version)?.[1]), use).toBeGreaterThanOrEqual(node24Major[action]!)
    }
  })

  it('on main only, pushes the four images the chart deploys to ghcr.io', () => {
    const images = workflow.jobs.images
    expect(images.needs).toBe('test')
    expect(images.if).toBe("github.event_name == 'push' && github.ref == 'refs/heads/main'")
    expect(images.permissions.packages).toBe('write')
    const matrix: { service: string; target: string }[] = images.strategy.matrix.include
    expect(matrix.map((m) => m.target).sort()).toEqual(SERVICES.map((s) => targetOf(s.name)).sort())
    const script = images.steps.find((s: any) => s.id === 'meta').run as string
    expect(script).toContain('image="ghcr.io/${owner}/cinemaabyss-${{ matrix.service }}"')
    const values = parse(readRepoFile(`${CHART_DIR}/values.yaml`))
    const chartImages = [values.monolith, values.moviesService, values.eventsService, values.proxy].map((s: any) => s.imageName).sort()
    expect(matrix.map((m) => `cinemaabyss-${m.service}`).sort()).toEqual(chartImages)
    const build = images.steps.find((s: any) => String(s.uses).startsWith('docker/build-push-action@'))
    expect(build.with).toMatchObject({ context: '.', target: '${{ matrix.target }}', push: true })
  })
})

describe('dashboard and alerts query metrics the services export', () => {
  const exported = new Set<string>()
  const migration = new Registry()
  createParityMonitor({ routes: [], registry: migration, logger: createLogger({ level: 'silent', name: 'test' }) })
  createReplicaMetrics(migration)
  for (const metrics of [createProxyMetrics(), createEventsMetrics(), createOutboxMetrics({ registry: new Registry() }), { registry: migration }]) {
    for (const m of metrics.registry.getMetricsAsArray()) {
      const name = (m as unknown as { name: string }).name
      const type = (m as unknown as { type?: string }).type
      exported.add(name)
      if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) exported.add(name + suffix)
    }
  }
  /** Metric names of our services in a PromQL expression (proxy_*, events_*, outbox_*, migration_*, movie_replication_*). */
  const used = (expr: string) => [...expr.matchAll(/\b((?:proxy|events|outbox|migration|movie_replication)_[a-z0-9_]+)\b/g)].map((m) => m[1]!)

  it('every Grafana panel query', () => {
    const dashboard = JSON.parse(readRepoFile(`${CHART_DIR}/files/grafana-dashboard.json`))
    const exprs: string[] = dashboard.panels.flatMap((p: any) => (p.targets ?? []).map((t: any) => t.expr))
    expect(exprs.length).toBeGreaterThanOrEqual(8)
    const names = exprs.flatMap(used)
    expect(names.filter((n) => !exported.has(n))).toEqual([])
    // The three things the dashboard is for.
    expect(names).toEqual(expect.arrayContaining(['proxy_requests_total', 'proxy_breaker_state', 'proxy_legacy_fallbacks_total']))
  })

  it('every alert rule', () => {
    const rules = parse(readRepoFile(`${CHART_DIR}/files/prometheus-rules.yml`)).groups.flatMap((g: any) => g.rules)
    expect(rules.length).toBeGreaterThanOrEqual(3)
    for (const rule of rules) {
      const names = used(rule.expr)
      expect(names.length, rule.alert).toBeGreaterThan(0)
      expect(names.filter((n) => !exported.has(n)), rule.alert).toEqual([])
    }
  })

  it('labels the alerts group by exist on those metrics', () => {
    const proxy = createProxyMetrics()
    const labelsOf = (name: string) => (proxy.registry.getSingleMetric(name) as unknown as { labelNames: string[] }).labelNames
    expect(labelsOf('proxy_breaker_state')).toContain('upstream')
    expect(labelsOf('proxy_requests_total')).toEqual(expect.arrayContaining(['route', 'upstream', 'status_class']))
    expect(labelsOf('proxy_legacy_fallbacks_total')).toContain('route')
  })

  it('the scrape configs find the metrics at /metrics of every service', () => {
    expect(existsSync(join(REPO_ROOT, 'deploy/prometheus/prometheus.yml'))).toBe(true)
    const config = parse(readRepoFile('deploy/prometheus/prometheus.yml'))
    for (const job of config.scrape_configs.filter((j: any) => j.job_name !== 'prometheus')) expect(job.metrics_path, job.job_name).toBe('/metrics')
  })
})
