// GET/POST /api/payments: what the legacy answered, row by row (docs/contract.md, "Payments").
import { expect } from 'vitest'
import { describeContract, type ContractCase } from './contract-harness.ts'

const FIX_500 = 'legacy defect: a 500 (docs/contract.md)'
const CONTRACT = 'the contract forbids it (PaymentInput); the legacy stored zero values'
const isList = (b: unknown) => expect(Array.isArray(b)).toBe(true)

const cases: ContractCase[] = [
  { name: 'list', legacy: 200, check: (b) => expect((b as Array<{ amount: number }>).slice(0, 3).map((p) => p.amount)).toEqual([9.99, 14.99, 19.99]) },
  { name: '?user_id=2', url: '/api/payments?user_id=2', legacy: 200, check: (b) => expect((b as Array<{ user_id: number }>).every((p) => p.user_id === 2)).toBe(true) },
  { name: '?user_id=-1: []', url: '/api/payments?user_id=-1', legacy: 200, response: [], rule: 'user-id-filter-positive' },
  { name: '?user_id=0: []', url: '/api/payments?user_id=0', legacy: 200, response: [], rule: 'user-id-filter-positive' },
  { name: '?user_id=999: []', url: '/api/payments?user_id=999', legacy: 200, response: [] },
  { name: '?user_id= (empty) lists', url: '/api/payments?user_id=', legacy: 200, check: isList },
  { name: '?id=3&user_id=1: id wins', url: '/api/payments?id=3&user_id=1', legacy: 200, response: { id: 3, user_id: 3, amount: 19.99 } },
  { name: '?id=3&user_id=abc: user_id not read', url: '/api/payments?id=3&user_id=abc', legacy: 200, response: { id: 3 } },
  { name: '?id=999999', url: '/api/payments?id=999999', legacy: 500, port: { status: 404, why: FIX_500 }, error: /^payment 999999 not found$/ },
  { name: '?user_id=abc', url: '/api/payments?user_id=abc', legacy: 500, port: { status: 400, why: FIX_500 }, error: /^user_id must be an integer$/ },
  { name: '?user_id=99999999999 (beyond INTEGER)', url: '/api/payments?user_id=99999999999', legacy: 500, port: { status: 400, why: FIX_500 }, error: /user_id/ },

  { name: 'create: server timestamp', body: { user_id: 1, amount: 4.5 }, legacy: 201, response: { user_id: 1, amount: 4.5 }, check: (b) => expect(Math.abs(Date.parse((b as { timestamp: string }).timestamp) - Date.now())).toBeLessThan(60_000) },
  { name: 'amount 0', body: { user_id: 1, amount: 0 }, legacy: 201, response: { amount: 0 }, rule: 'payment-amount-positive' },
  { name: 'amount -5', body: { user_id: 1, amount: -5 }, legacy: 201, response: { amount: -5 }, rule: 'payment-amount-positive' },
  { name: 'amount 99999999.99, the largest DECIMAL(10,2)', body: { user_id: 2, amount: 99_999_999.99 }, legacy: 201, response: { amount: 99_999_999.99 } },
  { name: 'amount 1e8 overflows DECIMAL(10,2)', body: { user_id: 1, amount: 100_000_000 }, legacy: 500, port: { status: 400, why: FIX_500 }, error: /amount/ },
  { name: 'user_id that does not exist', body: { user_id: 999_999, amount: 1 }, legacy: 500, port: { status: 400, why: FIX_500 }, error: /^user_id refers to a record that does not exist$/ },
  { name: 'user_id 0', body: { user_id: 0, amount: 1 }, legacy: 500, port: { status: 400, why: FIX_500 }, error: /user_id/ },
  { name: 'user_id beyond INTEGER', body: { user_id: 2 ** 31, amount: 1 }, legacy: 500, port: { status: 400, why: FIX_500 }, error: /user_id/ },
  { name: 'missing amount', body: { user_id: 1 }, legacy: 201, port: { status: 400, why: CONTRACT }, error: /amount/ },
  { name: 'missing user_id', body: { amount: 1 }, legacy: 500, port: { status: 400, why: 'user_id 0 broke the foreign key' }, error: /user_id/ },
  { name: 'user_id a string', body: { user_id: '1', amount: 1 }, legacy: 500, port: { status: 400, why: CONTRACT }, error: /user_id/ },
  { name: 'user_id 1.5', body: { user_id: 1.5, amount: 1 }, legacy: 500, port: { status: 400, why: CONTRACT }, error: /user_id/ },
  { name: 'amount a string', body: { user_id: 1, amount: 'ten' }, legacy: 201, port: { status: 400, why: CONTRACT }, error: /amount/ },
  { name: 'malformed JSON', raw: '{', legacy: 400 },
  { name: 'PATCH', method: 'PATCH', legacy: 405 },
]

describeContract(
  { path: '/api/payments', shape: { id: 'integer', user_id: 'integer', amount: 'number', timestamp: 'timestamp' }, services: ['monolith'] },
  cases,
)
