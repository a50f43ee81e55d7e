// GET/POST /api/subscriptions: what the legacy answered, row by row (docs/contract.md,
// "Subscriptions"), timestamps included: microseconds kept, printed as Go prints RFC 3339.
import { expect } from 'vitest'
import { describeContract, type ContractCase } from './contract-harness.ts'

const FIX_500 = 'legacy defect: a 500 (docs/contract.md)'
const CONTRACT = 'the contract forbids it (SubscriptionInput); the legacy stored zero values'
const sub = (fields: Record<string, unknown>) => ({ user_id: 2, plan_type: 'premium', start_date: '2025-01-01T00:00:00Z', end_date: '2025-12-31T23:59:59Z', ...fields })
// Written and read back unchanged, or as Go would print the stored instant.
const dates = (start: string, end: string, startOut = start, endOut = end): Pick<ContractCase, 'body' | 'response'> => ({
  body: sub({ start_date: start, end_date: end }),
  response: { start_date: startOut, end_date: endOut },
})
const now = new Date().toISOString()

const cases: ContractCase[] = [
  { name: 'list', legacy: 200, check: (b) => expect((b as Array<{ plan_type: string }>).slice(0, 3).map((s) => s.plan_type)).toEqual(['basic', 'premium', 'family']) },
  { name: '?user_id=3', url: '/api/subscriptions?user_id=3', legacy: 200, response: [{ user_id: 3, plan_type: 'family' }] },
  { name: '?user_id=0: []', url: '/api/subscriptions?user_id=0', legacy: 200, response: [], rule: 'user-id-filter-positive' },
  { name: '?user_id=-1: []', url: '/api/subscriptions?user_id=-1', legacy: 200, response: [], rule: 'user-id-filter-positive' },
  { name: '?id=2', url: '/api/subscriptions?id=2', legacy: 200, response: { id: 2, plan_type: 'premium' } },
  { name: '?id=999999', url: '/api/subscriptions?id=999999', legacy: 500, port: { status: 404, why: FIX_500 }, error: /^subscription 999999 not found$/ },
  { name: '?id=x', url: '/api/subscriptions?id=x', legacy: 500, port: { status: 400, why: FIX_500 }, error: /\bid\b/ },

  { name: 'create', body: sub({}), legacy: 201, response: { user_id: 2, plan_type: 'premium', start_date: '2025-01-01T00:00:00Z', end_date: '2025-12-31T23:59:59Z' } },
  {
    name: "end_date == start_date, both now (the legacy's own API tests)",
    body: sub({ start_date: now, end_date: now }),
    legacy: 201,
    rule: 'subscription-dates',
    check: (b) => expect([b, Date.parse((b as { end_date: string }).end_date)]).toMatchObject([{ start_date: (b as { end_date: string }).end_date }, Date.parse(now)]),
  },
  { name: 'end_date before start_date', ...dates('2025-03-01T00:00:00Z', '2025-02-01T00:00:00Z'), legacy: 201, rule: 'subscription-dates' },
  { name: 'empty plan_type', body: sub({ plan_type: '' }), legacy: 201, response: { plan_type: '' }, rule: 'subscription-plan-type-non-empty' },
  { name: 'microseconds kept', ...dates('2026-01-01T00:00:00.123456Z', '2026-02-01T00:00:00.000001Z'), legacy: 201 },
  { name: 'fraction trailing zeros trimmed, none when zero', ...dates('2026-01-01T00:00:00.120000Z', '2026-02-01T00:00:00.000000Z', '2026-01-01T00:00:00.12Z', '2026-02-01T00:00:00Z'), legacy: 201 },
  { name: 'nanoseconds rounded to microseconds by PostgreSQL', ...dates('2026-01-01T00:00:00.1234567Z', '2026-02-01T00:00:00.999999999Z', '2026-01-01T00:00:00.123457Z', '2026-02-01T00:00:01Z'), legacy: 201 },
  { name: 'an offset is printed in UTC', ...dates('2026-01-01T03:00:00.5+03:00', '2026-01-31T20:30:00-05:30', '2026-01-01T00:00:00.5Z', '2026-02-01T02:00:00Z'), legacy: 201 },
  { name: 'years 0017 and 0037', ...dates('0017-03-04T05:06:07Z', '0037-01-01T00:00:00.25Z'), legacy: 201 },
  { name: 'years 0001 and 9999', ...dates('0001-01-01T00:00:00Z', '9999-12-31T23:59:59.999999Z'), legacy: 201 },
  { name: 'years 0073 and 1937', ...dates('0073-06-15T12:00:00Z', '1937-06-15T12:00:00Z'), legacy: 201 },
  { name: 'leap day', ...dates('2024-02-29T00:00:00Z', '2028-02-29T00:00:00Z'), legacy: 201 },
  { name: 'year 0000 (PostgreSQL has no year 0)', body: sub({ start_date: '0000-01-01T00:00:00Z' }), legacy: 500, port: { status: 400, why: FIX_500 } },
  { name: 'plan_type longer than VARCHAR(50)', body: sub({ plan_type: 'p'.repeat(51) }), legacy: 500, port: { status: 400, why: FIX_500 }, error: /plan_type/ },
  { name: 'user_id that does not exist', body: sub({ user_id: 999_999 }), legacy: 500, port: { status: 400, why: FIX_500 }, error: /user_id/ },
  { name: 'start_date "yesterday"', body: sub({ start_date: 'yesterday' }), legacy: 400, error: /start_date/ },
  { name: 'a space instead of T', body: sub({ start_date: '2025-01-01 00:00:00Z' }), legacy: 400, error: /start_date/ },
  { name: 'lower-case t and z', body: sub({ end_date: '2025-01-01t00:00:00z' }), legacy: 400, error: /end_date/ },
  { name: 'no zone', body: sub({ start_date: '2025-01-01T00:00:00' }), legacy: 400, error: /start_date/ },
  { name: '30 February', body: sub({ start_date: '2025-02-30T00:00:00Z' }), legacy: 400, error: /start_date/ },
  { name: '29 February of a common year', body: sub({ start_date: '2025-02-29T00:00:00Z' }), legacy: 400, error: /start_date/ },
  { name: 'hour 24', body: sub({ start_date: '2025-01-01T24:00:00Z' }), legacy: 400, error: /start_date/ },
  { name: 'second 60', body: sub({ start_date: '2025-12-31T23:59:60Z' }), legacy: 400, error: /start_date/ },
  { name: 'a date only', body: sub({ end_date: '2025-12-31' }), legacy: 400, error: /end_date/ },
  { name: 'missing plan_type', body: { user_id: 1, start_date: '2025-01-01T00:00:00Z', end_date: '2025-02-01T00:00:00Z' }, legacy: 201, port: { status: 400, why: CONTRACT }, error: /plan_type/ },
  { name: 'missing start_date', body: { user_id: 1, plan_type: 'basic', end_date: '2025-02-01T00:00:00Z' }, legacy: 201, port: { status: 400, why: CONTRACT }, error: /start_date/ },
  { name: 'user_id a string', body: sub({ user_id: '2' }), legacy: 500, port: { status: 400, why: CONTRACT }, error: /user_id/ },
  { name: 'PUT', method: 'PUT', legacy: 405 },
]

describeContract(
  {
    path: '/api/subscriptions',
    shape: { id: 'integer', user_id: 'integer', plan_type: 'string', start_date: 'timestamp', end_date: 'timestamp' },
    services: ['monolith'],
  },
  cases,
)
