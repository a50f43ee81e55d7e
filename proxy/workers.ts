// PROXY_WORKERS=N: N proxy processes on one host, for hosts with more cores than one Node
// process can use. node:cluster: the primary accepts the connections and hands them to the
// workers round-robin; each worker is a whole proxy (its own pools, breakers, flag source and
// rate-limit client). GET /metrics, whichever worker answers it, is the sum over all workers
// (prom-client's AggregatorRegistry, gathered by the primary), so counters still add up;
// gauges aggregate as proxy/observability/metrics.ts says. SIGTERM/SIGINT to the primary stops every worker
// gracefully (each finishes its in-flight requests) and then the primary.
import cluster, { type Worker } from 'node:cluster'
import { AggregatorRegistry, type Registry } from 'prom-client'
import type { Logger } from '../lib/logger.ts'

const ASK = 'proxy:cluster-metrics'
const ANSWER = 'proxy:cluster-metrics-answer'
const ASK_TIMEOUT_MS = 5_000

interface Ask {
  type: typeof ASK
  id: number
}
interface Answer {
  type: typeof ANSWER
  id: number
  text?: string
  error?: string
}

export interface PrimaryOptions {
  workers: number
  /** A worker that does not end within this after SIGTERM is killed. */
  shutdownTimeoutMs: number
  /** The public listener's port: a worker serves once it listens there (it listens on the operators' port first). */
  port: number
  logger: Logger
}

/** The primary: starts the workers, replaces one that dies, answers their metric requests, stops them all on a signal. */
export function runPrimary(opts: PrimaryOptions): void {
  const { logger } = opts
  const aggregator = new AggregatorRegistry()
  let stopping = false
  const listening = new Set<number>()

  cluster.on('message', (worker: Worker, message: Ask) => {
    if (message?.type !== ASK) return
    const answer = (reply: Omit<Answer, 'type' | 'id'>) => worker.isConnected() && worker.send({ type: ANSWER, id: message.id, ...reply } satisfies Answer)
    aggregator.clusterMetrics().then(
      (text) => answer({ text }),
      (error: Error) => answer({ error: error.message }),
    )
  })
  let allListening = false
  cluster.on('listening', (worker, address) => {
    if (address.port !== opts.port) return // the operators' listener (or its Unix socket)
    listening.add(worker.id)
    if (!allListening && listening.size === opts.workers) {
      allListening = true
      logger.info({ workers: opts.workers }, 'all proxy workers listening')
    }
  })
  cluster.on('exit', (worker, code, signal) => {
    const wasServing = listening.delete(worker.id)
    if (stopping) return
    if (!wasServing) {
      // It never started (a port in use, a dependency missing): starting it again would fail the same way.
      logger.fatal({ worker: worker.id, code, signal }, 'a proxy worker failed to start: stopping')
      return void stop(1)
    }
    logger.error({ worker: worker.id, code, signal }, 'a proxy worker died: starting another')
    cluster.fork()
  })

  const stop = (exitCode: number) => {
    if (stopping) return
    stopping = true
    const alive = Object.values(cluster.workers ?? {}).filter((w): w is Worker => Boolean(w && !w.isDead()))
    logger.info({ workers: alive.length }, 'stopping the proxy workers')
    for (const w of alive) w.process.kill('SIGTERM')
    const killer = setTimeout(() => {
      for (const w of alive) if (!w.isDead()) w.process.kill('SIGKILL')
    }, opts.shutdownTimeoutMs + 5_000)
    Promise.all(alive.map((w) => (w.isDead() ? undefined : new Promise((r) => w.once('exit', r))))).then(() => {
      clearTimeout(killer)
      logger.info('stopped')
      process.exit(exitCode)
    })
  }
  process.on('SIGTERM', () => stop(0))
  process.on('SIGINT', () => stop(0))

  logger.info({ workers: opts.workers }, 'starting proxy workers')
  for (let i = 0; i < opts.workers; i++) cluster.fork()
}

/** In a worker: GET /metrics answers the primary's sum over all workers (this one's registry included). */
export function clusterMetrics(registry: Registry): () => Promise<string> {
  AggregatorRegistry.setRegistries([registry])
  new AggregatorRegistry() // makes this worker answer the primary's requests for its registry
  const pending = new Map<number, { resolve: (text: string) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }>()
  let next = 0
  process.on('message', (message: Answer) => {
    if (message?.type !== ANSWER) return
    const waiting = pending.get(message.id)
    if (!waiting) return
    pending.delete(message.id)
    clearTimeout(waiting.timer)
    if (message.text !== undefined) waiting.resolve(message.text)
    else waiting.reject(new Error(`cluster metrics: ${message.error}`))
  })
  return () =>
    new Promise((resolve, reject) => {
      const id = next++
      const timer = setTimeout(() => {
        pending.delete(id)
        reject(new Error('cluster metrics: the primary did not answer'))
      }, ASK_TIMEOUT_MS)
      pending.set(id, { resolve, reject, timer })
      process.send!({ type: ASK, id } satisfies Ask)
    })
}
