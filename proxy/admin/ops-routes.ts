// The proxy's own endpoints: /health (liveness, the specification's text) and /ready (flags
// loaded and the legacy upstream reachable). The public listener answers a bare /ready (the
// status alone: who is behind the proxy and how its flags load is the operators' business); the
// operators' listener the detailed one. /metrics is lib/http/metrics.ts, registered in ops-app.ts.
import type { FastifyInstance } from 'fastify'
import type { FlagSource, FlagSourceStatus } from '../flags/flag-source.ts'
import type { UpstreamRuntime } from '../forward/upstreams.ts'

export interface ReadinessOptions {
  flags: FlagSource
  /** The upstream behind the catch-all route: without it the proxy cannot serve anything. */
  legacy: UpstreamRuntime
  probeTimeoutMs: number
}

export interface Readiness {
  problems: string[]
  flags: FlagSourceStatus
  legacy: ReturnType<UpstreamRuntime['breaker']['state']>
}

/** The readiness check both listeners answer from; probes are shared and cached for 1 s. */
export function createReadiness(opts: ReadinessOptions, logger: FastifyInstance['log']): () => Promise<Readiness> {
  const { flags, legacy } = opts
  // Probes are shared and cached briefly, so a burst of readiness checks costs one upstream call.
  let probe: { at: number; result: Promise<string | undefined> } | undefined
  const probeLegacy = (): Promise<string | undefined> => {
    if (probe && Date.now() - probe.at < 1_000) return probe.result
    // The one upstream call, uncounted: a probe judges the upstream without moving its breaker.
    const result = legacy
      .call({ method: 'GET', url: legacy.upstream.healthPath, headers: {}, uncountedTimeoutMs: opts.probeTimeoutMs, log: logger })
      .then((outcome) => {
        if (outcome.kind === 'answer') return void outcome.answer.discard()
        if (outcome.kind === 'client-gone') return `${legacy.upstream.name} probe abandoned`
        outcome.answer?.discard()
        return outcome.failure === 'status_5xx' ? `${legacy.upstream.name} ${legacy.upstream.healthPath} answered ${outcome.answer?.statusCode ?? '5xx'}` : outcome.message
      })
    probe = { at: Date.now(), result }
    return result
  }
  return async () => {
    const flagStatus = flags.status()
    const legacyProblem = await probeLegacy()
    const problems = [
      ...(flagStatus.loaded ? [] : [`flags not loaded from ${flagStatus.location}: ${flagStatus.notLoaded ?? flagStatus.lastError ?? 'not read yet'}`]),
      ...(legacyProblem ? [legacyProblem] : []),
    ]
    return { problems, flags: flagStatus, legacy: legacy.breaker.state() }
  }
}

export interface OpsRoutesOptions {
  readiness: () => Promise<Readiness>
  /** The operators' listener: /ready says why (flags, the legacy upstream); else the status alone. */
  detailed: boolean
}

export async function opsRoutes(app: FastifyInstance, opts: OpsRoutesOptions): Promise<void> {
  app.get('/health', async (_request, reply) => reply.type('text/plain; charset=utf-8').send('Strangler Fig Proxy is healthy'))

  app.get('/ready', async (_request, reply) => {
    const { problems, flags, legacy } = await opts.readiness()
    // A stale flag source (Unleash down) is reported but does not fail readiness: the last known flags (this replica's, or Redis') still route correctly.
    const body = opts.detailed ? { status: problems.length === 0, ...(problems.length ? { error: problems.join('; ') } : {}), flags, legacy } : { status: problems.length === 0 }
    return reply.code(problems.length ? 503 : 200).send(body)
  })
}
