// The runtime state of each declared upstream: its connection pool, its breaker and the
// options they were built with (route-map overrides over the UPSTREAM_*/BREAKER_* defaults).
// Built once per app, closed with it; the proxy routes, the tunnel, /ready and /admin read it.
import type { Pool } from 'undici'
import type { Logger } from '../lib/logger.ts'
import type { ProxyConfig } from './config.ts'
import { createBreaker, type BreakerOptions, type UpstreamBreaker } from './breakers.ts'
import type { ProxyMetrics } from './metrics.ts'
import type { Upstream } from './route-map.ts'
import { createPool, type PoolOptions } from './upstream-client.ts'

export interface UpstreamRuntime {
  upstream: Upstream
  pool: Pool
  /** The URL's path, prefixed to every forwarded path (an upstream may live below a path). */
  basePath: string
  breaker: UpstreamBreaker
  /** The pool options in force for this upstream (the WebSocket tunnel applies the same timeouts). */
  poolOptions: PoolOptions
}

export interface UpstreamDefaults {
  pool: PoolOptions
  breaker: BreakerOptions
}

export type Upstreams = ReadonlyMap<string, UpstreamRuntime>

/** The UPSTREAM_* and BREAKER_* settings, as every upstream gets them unless its route-map entry overrides. */
export function upstreamDefaults(config: ProxyConfig): UpstreamDefaults {
  return {
    pool: {
      connections: config.upstreamConnections,
      connectTimeoutMs: config.upstreamConnectTimeoutMs,
      responseTimeoutMs: config.upstreamResponseTimeoutMs,
      streamIdleTimeoutMs: config.upstreamStreamIdleTimeoutMs,
    },
    breaker: {
      volumeThreshold: config.breakerVolumeThreshold,
      errorPercent: config.breakerErrorPercent,
      resetTimeoutMs: config.breakerResetTimeoutMs,
      consecutiveFailures: config.breakerConsecutiveFailures,
      windowMs: config.breakerWindowMs,
    },
  }
}

export function createUpstreams(declared: readonly Upstream[], defaults: UpstreamDefaults, metrics: ProxyMetrics, logger: Logger): Upstreams {
  const runtimes = new Map<string, UpstreamRuntime>()
  for (const upstream of declared) {
    const poolOptions = { ...defaults.pool, ...upstream.pool }
    runtimes.set(upstream.name, {
      upstream,
      pool: createPool(upstream.url, poolOptions),
      basePath: new URL(upstream.url).pathname.replace(/\/+$/, ''),
      breaker: createBreaker(upstream.name, { ...defaults.breaker, ...upstream.breaker }, metrics, logger),
      poolOptions,
    })
  }
  return runtimes
}

export async function closeUpstreams(upstreams: Upstreams): Promise<void> {
  for (const rt of upstreams.values()) {
    rt.breaker.shutdown()
    await rt.pool.close().catch(() => rt.pool.destroy())
  }
}
