// The observed rules (lib/contract/rules.ts): a request breaking one is answered like the legacy
// did, counted in contract_rule_violations_total{service,rule} and logged at info with the
// request id; ENFORCE_RULES turns the listed rules into 400s naming the fields.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigError } from '../../lib/config.ts'
import { RULE_NAMES } from '../../lib/contract/rules.ts'
import { loadConfig as monolithConfig } from '../../monolith/config.ts'
import { loadConfig as moviesConfig } from '../../movies-service/config.ts'
import { monolithApp, moviesServiceApp } from '../helpers/apps.ts'
import { backends, type OpenBackend } from '../helpers/backends.ts'
import { captureLogs } from '../helpers/logs.ts'
import { metric } from '../helpers/metrics.ts'

const [, openPglite] = backends.find(([name]) => name === 'pglite')!
let backend: OpenBackend
beforeAll(async () => {
  backend = await openPglite()
})
afterAll(() => backend?.close())

const backwards = { user_id: 1, plan_type: 'basic', start_date: '2025-03-01T00:00:00Z', end_date: '2025-02-01T00:00:00Z' }
const violations = async (app: ReturnType<typeof monolithApp>, service: string, rule: string) =>
  metric((await app.inject('/metrics')).body, `contract_rule_violations_total{service="${service}",rule="${rule}"}`)

describe('observed by default', () => {
  it('answers like the legacy, counts and logs at info with the request id', async () => {
    const logs = captureLogs()
    const app = monolithApp(backend.db, logs.logger)
    try {
      // Every rule's series exists from the start.
      const before = (await app.inject('/metrics')).body
      for (const rule of RULE_NAMES) expect(metric(before, `contract_rule_violations_total{service="monolith",rule="${rule}"}`), rule).toBe(0)

      const res = await app.inject({ method: 'POST', url: '/api/subscriptions', headers: { 'x-request-id': 'rule-check-1' }, payload: backwards })
      expect(res.statusCode).toBe(201)
      expect(await violations(app, 'monolith', 'subscription-dates')).toBe(1)
      expect(await violations(app, 'monolith', 'payment-amount-positive')).toBe(0)
      const line = logs.lines.find((l) => l.rule === 'subscription-dates')
      expect(line).toMatchObject({ level: 30, reqId: 'rule-check-1', fields: ['start_date', 'end_date'], enforced: false })

      // A request following every rule is not counted.
      const fine = await app.inject({ method: 'POST', url: '/api/subscriptions', payload: { ...backwards, end_date: '2025-04-01T00:00:00Z' } })
      expect(fine.statusCode).toBe(201)
      expect(await violations(app, 'monolith', 'subscription-dates')).toBe(1)
    } finally {
      await app.close()
    }
  })

  it('compares dates to the microsecond and across offsets', async () => {
    const app = monolithApp(backend.db)
    try {
      const post = (start_date: string, end_date: string) => app.inject({ method: 'POST', url: '/api/subscriptions', payload: { ...backwards, start_date, end_date } })
      expect((await post('2026-01-01T00:00:00.000001Z', '2026-01-01T00:00:00.000002Z')).statusCode).toBe(201)
      expect(await violations(app, 'monolith', 'subscription-dates')).toBe(0)
      // The same instant written in two zones.
      expect((await post('2026-01-01T03:00:00+03:00', '2026-01-01T00:00:00Z')).statusCode).toBe(201)
      expect(await violations(app, 'monolith', 'subscription-dates')).toBe(1)
    } finally {
      await app.close()
    }
  })
})

describe('ENFORCE_RULES', () => {
  it('ENFORCE_RULES=subscription-dates: end_date before (or at) start_date is a 400 naming the fields; other rules stay observed', async () => {
    const app = monolithApp(backend.db, captureLogs().logger, { ENFORCE_RULES: 'subscription-dates' })
    try {
      for (const end_date of ['2025-02-01T00:00:00Z', backwards.start_date]) {
        const res = await app.inject({ method: 'POST', url: '/api/subscriptions', payload: { ...backwards, end_date } })
        expect(res.statusCode).toBe(400)
        expect(res.json()).toEqual({ error: 'end_date must be after start_date (rule subscription-dates)' })
      }
      expect(await violations(app, 'monolith', 'subscription-dates')).toBe(2)
      expect((await app.inject({ method: 'POST', url: '/api/subscriptions', payload: { ...backwards, end_date: '2025-04-01T00:00:00Z' } })).statusCode).toBe(201)
      expect((await app.inject({ method: 'POST', url: '/api/subscriptions', payload: { ...backwards, plan_type: '', end_date: '2025-04-01T00:00:00Z' } })).statusCode).toBe(201)
      expect((await app.inject({ method: 'POST', url: '/api/payments', payload: { user_id: 1, amount: 0 } })).statusCode).toBe(201)
    } finally {
      await app.close()
    }
  })

  it('enforces each listed rule in the service that checks it', async () => {
    const env = { ENFORCE_RULES: 'payment-amount-positive, user-id-filter-positive,movie-title-non-empty' }
    const monolith = monolithApp(backend.db, captureLogs().logger, env)
    const movies = moviesServiceApp(backend.db, { env })
    try {
      const payment = await monolith.inject({ method: 'POST', url: '/api/payments', payload: { user_id: 1, amount: -5 } })
      expect([payment.statusCode, payment.json().error]).toEqual([400, 'amount must be greater than 0 (rule payment-amount-positive)'])
      const filter = await monolith.inject('/api/payments?user_id=0')
      expect([filter.statusCode, filter.json().error]).toEqual([400, 'user_id must be a positive integer (rule user-id-filter-positive)'])
      for (const app of [monolith, movies]) {
        const movie = await app.inject({ method: 'POST', url: '/api/movies', payload: { title: ' ', description: 'd', rating: 5 } })
        expect([movie.statusCode, movie.json().error]).toEqual([400, 'title must not be empty (rule movie-title-non-empty)'])
      }
      expect(await violations(movies, 'movies-service', 'movie-title-non-empty')).toBe(1)
      expect((await movies.inject({ method: 'POST', url: '/api/movies', payload: { title: 'T', description: 'd', genres: [''], rating: 5 } })).statusCode).toBe(201)
    } finally {
      await monolith.close()
      await movies.close()
    }
  })

  it.each([
    ['monolith', monolithConfig],
    ['movies-service', moviesConfig],
  ])('%s: default none; an unknown rule name fails at start naming the variable', (_service, load) => {
    expect(load({}).enforceRules).toEqual([])
    expect(load({ ENFORCE_RULES: 'subscription-dates,subscription-dates' }).enforceRules).toEqual(['subscription-dates'])
    expect(() => load({ ENFORCE_RULES: 'subscription-dates,no-such-rule' })).toThrow(ConfigError)
    expect(() => load({ ENFORCE_RULES: 'no-such-rule' })).toThrow(/ENFORCE_RULES .*unknown: no-such-rule/)
  })
})
