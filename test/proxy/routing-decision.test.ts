// The routing decision (proxy/routing/decision.ts decideRoute) as a table: route, request facts, flag
// state and breaker states in; side, upstream, reason, fallback policy and the expected
// answerer out. The hot path, the WebSocket tunnel and /admin/explain all use this function;
// admin-metrics-ratelimit.test.ts checks that explain and real requests agree.
import { describe, expect, it } from 'vitest'
import type { BreakerStateName } from '../../proxy/model/upstream-options.ts'
import type { Route, Upstream } from '../../proxy/model/route-map.ts'
import { decideRoute, type FlagView, type RequestFacts } from '../../proxy/routing/decision.ts'

const upstream = (name: string): Upstream => ({ name, url: `http://${name}:1`, healthPath: '/health', pool: {}, breaker: {} })
const split: Route = { name: 'users', prefix: '/api/users', legacy: upstream('monolith'), target: upstream('users-service'), flag: 'users-migration' }
const plain: Route = { name: 'default', prefix: '/', legacy: upstream('monolith') }

/** The flag state: its rollout percent, and which identities it turns on. */
const flagAt = (percent: number | undefined, on: string[] = [], sticky = true): FlagView => ({
  isEnabled: (_flag, id) => on.includes(id),
  state: (flag) => ({ flag, percent, sticky, source: 'file' }),
})

type Row = [what: string, route: Route, facts: RequestFacts, flags: FlagView, breakers: { legacy?: BreakerStateName; target?: BreakerStateName }, expected: object]

const rows: Row[] = [
  ['unsplit route: legacy, default', plain, { method: 'GET' }, flagAt(0), {}, { side: 'legacy', upstream: 'monolith', reason: 'default', fallback: 'none', expected: { upstream: 'monolith', reason: 'default' } }],
  ['unsplit route, legacy circuit open: 503', plain, { method: 'POST' }, flagAt(0), { legacy: 'open' }, { side: 'legacy', fallback: 'none', expected: { upstream: 'proxy', reason: 'default', status: 503 } }],
  ['partial rollout, identity off: legacy, sticky', split, { method: 'GET', identity: 'a' }, flagAt(30, ['b']), {}, { side: 'legacy', upstream: 'monolith', reason: 'sticky', fallback: 'none' }],
  ['partial rollout, identity on: target, sticky, GET falls back', split, { method: 'GET', identity: 'b' }, flagAt(30, ['b']), {}, { side: 'target', upstream: 'users-service', reason: 'sticky', fallback: 'legacy', expected: { upstream: 'users-service', reason: 'sticky' } }],
  ['HEAD falls back too', split, { method: 'HEAD', identity: 'b' }, flagAt(30, ['b']), {}, { side: 'target', fallback: 'legacy' }],
  ['a write on the target is never replayed', split, { method: 'POST', identity: 'b' }, flagAt(30, ['b']), {}, { side: 'target', fallback: 'none' }],
  ['0 %: legacy, reason flag', split, { method: 'GET', identity: 'a' }, flagAt(0), {}, { side: 'legacy', reason: 'flag' }],
  ['100 %: target, reason flag', split, { method: 'GET', identity: 'a' }, flagAt(100, ['a']), {}, { side: 'target', reason: 'flag' }],
  ['a custom strategy (no plain percent) that is sticky: sticky', split, { method: 'GET', identity: 'a' }, flagAt(undefined, ['a']), {}, { side: 'target', reason: 'sticky' }],
  ['a non-sticky partial rollout: flag', split, { method: 'GET', identity: 'a' }, flagAt(50, ['a'], false), {}, { side: 'target', reason: 'flag' }],
  ['override target beats the flag', split, { method: 'GET', override: 'target' }, flagAt(0), {}, { side: 'target', upstream: 'users-service', reason: 'override', fallback: 'legacy' }],
  ['override legacy beats the flag', split, { method: 'PUT', override: 'legacy' }, flagAt(100, ['a']), {}, { side: 'legacy', reason: 'override', fallback: 'none' }],
  ['target circuit open, GET: legacy answers, reason fallback', split, { method: 'GET', identity: 'b' }, flagAt(30, ['b']), { target: 'open' }, { side: 'target', expected: { upstream: 'monolith', reason: 'fallback' } }],
  ['target circuit open, DELETE: 503', split, { method: 'DELETE', identity: 'b' }, flagAt(30, ['b']), { target: 'open' }, { side: 'target', expected: { upstream: 'proxy', reason: 'sticky', status: 503 } }],
  ['both circuits open, GET: 503 after the fallback', split, { method: 'GET', identity: 'b' }, flagAt(30, ['b']), { target: 'open', legacy: 'open' }, { expected: { upstream: 'proxy', reason: 'fallback', status: 503 } }],
  ['target half-open: the trial goes to the target', split, { method: 'GET', identity: 'b' }, flagAt(30, ['b']), { target: 'halfOpen' }, { expected: { upstream: 'users-service', reason: 'sticky' } }],
  ['target circuit open does not matter on the legacy side', split, { method: 'POST', identity: 'a' }, flagAt(30, ['b']), { target: 'open' }, { side: 'legacy', expected: { upstream: 'monolith', reason: 'sticky' } }],
]

describe('decideRoute', () => {
  for (const [what, route, facts, flags, breakers, expected] of rows) {
    it(what, () => {
      expect(decideRoute(route, facts, flags, breakers)).toMatchObject(expected)
    })
  }
})
