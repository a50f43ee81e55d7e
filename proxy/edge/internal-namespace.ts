// Paths that are never the routes' on the public listener: /internal/* on the services (the
// parity digests) is for the proxy and operators on the inside network; /admin, /metrics and
// /documentation are the operators' listener's (proxy/ops-app.ts). The public listener answers
// them 404 itself in every spelling (edge-guards.ts, request-target.ts), whatever the catch-all
// route would forward: a client can neither reach them on an upstream nor learn they exist.
export const INTERNAL_PREFIX = '/internal'
export const ADMIN_PREFIX = '/admin'

/** Lower case; matched case-insensitively on the decoded path (request-target.ts reservedPrefix). */
export const PUBLIC_RESERVED_PREFIXES: readonly string[] = [ADMIN_PREFIX, INTERNAL_PREFIX, '/metrics', '/documentation']
