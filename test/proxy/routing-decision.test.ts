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

/** A flag view with the route's stage flags defined: the writer side and, optionally, retirement. */
const staged = (percent: number, on: string[], writes: 'legacy' | 'target', retired = false): FlagView => ({
  isEnabled: (_flag, id) => on.includes(id),
  state: (flag) =>
    flag === 'users-migration-writes'
      ? { flag, percent: writes === 'target' ? 100 : 0, sticky: true, source: 'file', defined: true }
      : flag === 'users-migration-retired'
        ? { flag, percent: retired ? 100 : 0, sticky: true, source: 'file', defined: retired }
        : { flag, percent, sticky: true, source: 'file', defined: true },
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
  ['writer side legacy: a write goes there though the read flag says target', split, { method: 'POST', identity: 'b' }, staged(30, ['b'], 'legacy'), {}, { side: 'legacy', reason: 'writes', fallback: 'none' }],
  ['writer side target: a write goes there though the read flag says legacy', split, { method: 'DELETE', identity: 'a' }, staged(30, ['b'], 'target'), {}, { side: 'target', reason: 'writes', fallback: 'none' }],
  ['writer side wins over X-Backend for writes', split, { method: 'PUT', override: 'legacy' }, staged(100, ['a'], 'target'), {}, { side: 'target', reason: 'writes' }],
  ['a read still follows the read flag', split, { method: 'GET', identity: 'b' }, staged(30, ['b'], 'legacy'), {}, { side: 'target', reason: 'sticky', fallback: 'legacy' }],
  ['a read after a write: read-your-writes sends it where the write went', split, { method: 'GET', identity: 'b', recentWrite: 'legacy' }, staged(30, ['b'], 'legacy'), {}, { side: 'legacy', reason: 'read-your-writes', fallback: 'none' }],
  ['a write during a switch: the fence\'s side before the flag arrives', split, { method: 'POST', identity: 'a', storeWriter: 'target' }, staged(0, [], 'legacy'), {}, { side: 'target', reason: 'writes' }],
  ['retired: everything to the target, a read has no fallback, X-Backend ignored', split, { method: 'GET', override: 'legacy' }, staged(100, [], 'target', true), { target: 'open' }, { side: 'target', reason: 'flag', fallback: 'none', expected: { upstream: 'proxy', status: 503 } }],
  ['target circuit open does not matter on the legacy side', split, { method: 'POST', identity: 'a' }, flagAt(30, ['b']), { target: 'open' }, { side: 'legacy', expected: { upstream: 'monolith', reason: 'sticky' } }],
]

describe('decideRoute', () => {
  for (const [what, route, facts, flags, breakers, expected] of rows) {
    it(what, () => {
      expect(decideRoute(route, facts, flags, breakers)).toMatchObject(expected)
    })
  }
})
