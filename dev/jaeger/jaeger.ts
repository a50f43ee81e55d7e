// Real Jaeger v2 (an OpenTelemetry Collector distribution: OTLP receiver, in-memory storage,
// query API) for the tracing tests and `npm start`, built from its Go module as dev/helm builds
// Helm, once per pinned version into .cache/jaeger/<version>/jaeger.
//
//   const jaeger = await startJaeger()        // free ports, in-memory storage
//   env.OTEL_EXPORTER_OTLP_ENDPOINT = jaeger.otlpEndpoint
//   await jaeger.trace(traceId)               // GET /api/traces/<id> of its query API
//   await jaeger.stop()
//
// Jaeger tags v2 releases as v2.x in git, but its go.mod is github.com/jaegertracing/jaeger
// without /v2, so the Go module proxy serves them under the paired v1 tag: v1.76.0 is
// Jaeger v2.13.0, and its cmd/jaeger is the v2 binary. Its go.mod has replace directives,
// which `go install module@version` refuses: the module is downloaded, then built in place.
import { spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from '../free-port.ts'
import { ensureGoBinary, GoBuildError, warmGoBinary, type GoBinary } from '../go-binary.ts'
import { REPO_ROOT } from '../paths.ts'
import { spawnTied } from '../tied-process.ts'
import { waitForHttp } from '../wait-for-http.ts'

/** The Go module version of Jaeger v2.13.0 (see above). */
export const JAEGER_MODULE_VERSION = 'v1.76.0'
const MODULE = 'github.com/jaegertracing/jaeger'

const jaeger: GoBinary = {
  name: 'jaeger',
  version: JAEGER_MODULE_VERSION,
  cacheDir: join(REPO_ROOT, '.cache', 'jaeger'),
  build(outDir, timeoutMs, go) {
    const download = spawnSync(go, ['mod', 'download', '-json', `${MODULE}@${JAEGER_MODULE_VERSION}`], {
      env: { ...process.env, GOTOOLCHAIN: 'local' },
      encoding: 'utf8',
      timeout: timeoutMs,
    })
    const dir = download.status === 0 ? (JSON.parse(download.stdout) as { Dir?: string }).Dir : undefined
    if (!dir) throw new GoBuildError(`go mod download ${MODULE}@${JAEGER_MODULE_VERSION} failed:\n${download.stderr}${download.stdout}`)
    const result = spawnSync(go, ['build', '-trimpath', '-ldflags=-s -w', '-o', join(outDir, 'jaeger'), './cmd/jaeger'], {
      cwd: dir,
      env: { ...process.env, CGO_ENABLED: '0', GOTOOLCHAIN: 'local' },
      encoding: 'utf8',
      timeout: timeoutMs,
    })
    if (result.status !== 0) throw new GoBuildError(`go build ${MODULE}/cmd/jaeger@${JAEGER_MODULE_VERSION} failed (${result.error?.message ?? `exit ${result.status}`}):\n${result.stderr}`)
  },
}

/** Returns the path of the pinned jaeger binary, building it if needed (minutes, the first time). */
export const ensureJaeger = (): string => ensureGoBinary(jaeger)

/** Span as Jaeger's query API (GET /api/traces/<id>) returns it. */
export interface JaegerSpan {
  traceID: string
  spanID: string
  operationName: string
  references: { refType: 'CHILD_OF' | 'FOLLOWS_FROM'; traceID: string; spanID: string }[]
  tags: { key: string; type: string; value: unknown }[]
  processID: string
}
export interface JaegerTrace {
  traceID: string
  spans: JaegerSpan[]
  processes: Record<string, { serviceName: string }>
}

export interface RunningJaeger {
  /** For OTEL_EXPORTER_OTLP_ENDPOINT (OTLP over HTTP). */
  otlpEndpoint: string
  /** The query API and UI. */
  queryUrl: string
  /** The trace as stored so far; undefined when Jaeger has none with that id. */
  trace(traceId: string): Promise<JaegerTrace | undefined>
  /** The latest traces of `service` holding an `operation` span (GET /api/traces?service=…). */
  search(service: string, operation: string): Promise<JaegerTrace[]>
  output(): string
  stop(): Promise<void>
}

function config(ports: { otlp: number; query: number; queryGrpc: number; health: number }): string {
  return `service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:${ports.health}
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:${ports.query}
    grpc:
      endpoint: 127.0.0.1:${ports.queryGrpc}
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:${ports.otlp}
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`
}

/** Starts Jaeger on free 127.0.0.1 ports with in-memory storage; stop() ends it (by its handle). */
export async function startJaeger(opts: { timeoutMs?: number } = {}): Promise<RunningJaeger> {
  const bin = ensureJaeger()
  const ports = { otlp: await freePort(), query: await freePort(), queryGrpc: await freePort(), health: await freePort() }
  const dir = mkdtempSync(join(tmpdir(), 'jaeger-'))
  const file = join(dir, 'config.yaml')
  writeFileSync(file, config(ports))
  let output = ''
  const child: ChildProcess = spawnTied(bin, ['--config', file], { stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const queryUrl = `http://127.0.0.1:${ports.query}`
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
      await exited
      clearTimeout(timer)
    }
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    await waitForHttp(`${queryUrl}/api/services`, { timeoutMs: opts.timeoutMs ?? 30_000, isAlive: () => child.exitCode === null })
  } catch (error) {
    await stop()
    throw new Error(`jaeger did not start: ${(error as Error).message}\n${output}`, { cause: error })
  }
  return {
    otlpEndpoint: `http://127.0.0.1:${ports.otlp}`,
    queryUrl,
    async trace(traceId) {
      const res = await fetch(`${queryUrl}/api/traces/${traceId}`, { signal: AbortSignal.timeout(5_000) })
      if (res.status === 404) return undefined
      if (!res.ok) throw new Error(`jaeger query answered ${res.status}: ${await res.text()}`)
      const body = (await res.json()) as { data?: JaegerTrace[] }
      return body.data?.[0]
    },
    async search(service, operation) {
      const query = new URLSearchParams({ service, operation, lookback: '1h', limit: '100' })
      const res = await fetch(`${queryUrl}/api/traces?${query}`, { signal: AbortSignal.timeout(5_000) })
      if (!res.ok) throw new Error(`jaeger query answered ${res.status}: ${await res.text()}`)
      return ((await res.json()) as { data?: JaegerTrace[] }).data ?? []
    },
    output: () => output,
    stop,
  }
}

// `npm run jaeger:warm`: build (or find) the pinned jaeger and say where it is.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) warmGoBinary('jaeger:warm', ensureJaeger, () => `jaeger ${JAEGER_MODULE_VERSION} (Jaeger v2)`)
