// The options of an upstream's runtime, as data: its pool and its breaker (the UPSTREAM_* and
// BREAKER_* defaults, and the route map's per-upstream overrides), and the breaker states.
import { Type, type Static } from '@sinclair/typebox'

export const PoolOptions = Type.Object(
  {
    /** Keep-alive connections to the upstream. */
    connections: Type.Integer({ minimum: 1 }),
    connectTimeoutMs: Type.Integer({ minimum: 1 }),
    /** Wait for the response headers. */
    responseTimeoutMs: Type.Integer({ minimum: 1 }),
    /** Longest quiet gap inside a streamed response body (SSE, long poll, download). */
    streamIdleTimeoutMs: Type.Integer({ minimum: 1 }),
  },
  { additionalProperties: false },
)
export type PoolOptions = Static<typeof PoolOptions>

export const BreakerOptions = Type.Object(
  {
    /** Calls in the window before the percentage rule may open it. */
    volumeThreshold: Type.Integer({ minimum: 1 }),
    /** Failure percentage over the window that opens it. */
    errorPercent: Type.Integer({ minimum: 1, maximum: 100 }),
    /** Open time before one trial call is let through. */
    resetTimeoutMs: Type.Integer({ minimum: 1 }),
    /** Failures in a row that open it whatever the window says; 0 = off. */
    consecutiveFailures: Type.Integer({ minimum: 0 }),
    /** Rolling window of the statistics. */
    windowMs: Type.Integer({ minimum: 100 }),
    /** A call answering (headers) after this long is slow; a client leaving after it makes the call a `slow` failure. */
    slowCallMs: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Share of slow calls over the window (at least volumeThreshold calls) that opens it. */
    slowCallPercent: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
  },
  { additionalProperties: false },
)
export type BreakerOptions = Static<typeof BreakerOptions>

/** A breaker's state, as /admin, /ready, the console and the routing decision name it. */
export type BreakerStateName = 'closed' | 'halfOpen' | 'open'
