// What each operator role may do on the admin API (ADMIN_TOKENS=name:token:role):
// - viewer: reads (GET/HEAD: state, ledger, explain, traffic, diffs, the console);
// - operator: plus the changes that can be undone (rollouts, ramps, rollbacks, shadow settings,
//   the writes switch, a parity check);
// - owner: plus the irreversible or guard-overriding ones (retire, `force`, conflict repair,
//   the learned shadow noise reset: what was learned over hours cannot be learned back at once).
// One rule, read by the admin API's hook (admin-auth.ts) and shown to the console (GET /admin/whoami).
export const ADMIN_ROLES = ['viewer', 'operator', 'owner'] as const
export type AdminRole = (typeof ADMIN_ROLES)[number]

/** A token without a role keeps what every token could do before roles existed. */
export const DEFAULT_ADMIN_ROLE: AdminRole = 'owner'

const RANK: Record<AdminRole, number> = { viewer: 0, operator: 1, owner: 2 }

export const roleAllows = (role: AdminRole, needed: AdminRole): boolean => RANK[role] >= RANK[needed]

/** Paths (the router's pattern) of steps that cannot be taken back. */
const OWNER_PATHS = new Set(['/admin/routes/:name/retire', '/admin/routes/:name/conflicts/resolve', '/admin/routes/:name/shadow/noise'])

/** The least role a call needs: its method, the route's path pattern, and whether it forces a guard. */
export function roleNeeded(method: string, routePath: string | undefined, body: unknown): AdminRole {
  if (method === 'GET' || method === 'HEAD') return 'viewer'
  if (routePath !== undefined && OWNER_PATHS.has(routePath)) return 'owner'
  if (typeof body === 'object' && body !== null && (body as { force?: unknown }).force === true) return 'owner'
  return 'operator'
}

/** What the console may offer a role (GET /admin/whoami). */
export function capabilitiesOf(role: AdminRole) {
  return { read: true, change: roleAllows(role, 'operator'), irreversible: roleAllows(role, 'owner') }
}
