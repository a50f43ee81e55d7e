// What /admin/explain and the proxied routes say to each other (proxy-routes.ts answers,
// admin/admin-routes.ts asks).
import type { IdentitySource, RouteDecision, RouteReason } from './decision.ts'

/**
 * /admin/explain sends the path it is asked about through the app itself (app.inject) with this
 * header: the router, the edge guards and the decision are those of a real request; the proxied
 * route answers the decision instead of calling an upstream. Answers carry it back as `decision`.
 */
export const EXPLAIN_HEADER = 'x-proxy-explain'

/** What an explain request learns from a proxied route. */
export interface ExplainedDecision {
  /** null: the proxy answers the path itself (its own paths, a refused request). */
  route: string | null
  upstream: string | null
  status?: 503
  reason?: RouteReason
  fallback?: RouteDecision['fallback']
  why: string
  /** Where the sticky identity comes from on this route (split routes), and the route's token policy. */
  identity?: { source: IdentitySource | 'none'; auth: 'off' | 'optional' | 'required' }
}
