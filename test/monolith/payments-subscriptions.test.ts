import { describe, expect, it } from 'vitest'
import { monolithApp } from '../helpers/apps.ts'
import { backends, useBackendApp } from '../helpers/backends.ts'

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/

describe.each(backends)('monolith: /api/payments and /api/subscriptions (%s)', (_backend, open) => {
  const t = useBackendApp(open, (db) => monolithApp(db))

  describe('payments', () => {
    it('lists the seed payments with numeric amounts and RFC 3339 timestamps', async () => {
      const res = await t.app.inject('/api/payments')
      expect(res.statusCode).toBe(200)
      const payments = res.json()
      expect(payments.map((p: { user_id: number; amount: number }) => [p.user_id, p.amount])).toEqual([
        [1, 9.99],
        [2, 14.99],
        [3, 19.99],
      ])
      expect(Object.keys(payments[0]).sort()).toEqual(['amount', 'id', 'timestamp', 'user_id'])
      expect(payments[0].timestamp).toMatch(RFC3339)
    })

    it('filters by ?user_id= and finds one by ?id= (id wins when both are given)', async () => {
      const byUser = await t.app.inject('/api/payments?user_id=2')
      expect(byUser.json()).toEqual([expect.objectContaining({ user_id: 2, amount: 14.99 })])
      expect((await t.app.inject('/api/payments?user_id=999')).json()).toEqual([])
      const one = await t.app.inject('/api/payments?id=3&user_id=1')
      expect(one.json()).toMatchObject({ id: 3, user_id: 3 })
      const missing = await t.app.inject('/api/payments?id=999999')
      expect(missing.statusCode).toBe(404)
      expect(missing.json()).toEqual({ error: 'payment 999999 not found' })
      expect((await t.app.inject('/api/payments?user_id=x')).json()).toEqual({ error: 'user_id must be an integer' })
    })

    it('creates a payment with a server timestamp', async () => {
      const res = await t.app.inject({ method: 'POST', url: '/api/payments', payload: { user_id: 1, amount: 4.5 } })
      expect(res.statusCode).toBe(201)
      const payment = res.json()
      expect(payment).toEqual({ id: expect.any(Number), user_id: 1, amount: 4.5, timestamp: expect.stringMatching(RFC3339) })
      expect(Math.abs(Date.parse(payment.timestamp) - Date.now())).toBeLessThan(60_000)
    })

    it.each([
      [{ amount: 1 }, 'user_id'],
      [{ user_id: 1 }, 'amount'],
      [{ user_id: '1', amount: 1 }, 'user_id'],
      [{ user_id: 1.5, amount: 1 }, 'user_id'],
      [{ user_id: 1, amount: 'ten' }, 'amount'],
      [{ user_id: 1, amount: 100_000_000 }, 'amount'],
      [{ user_id: 999999, amount: 1 }, 'user_id'],
    ])('400 naming the field for %j', async (payload, field) => {
      const res = await t.app.inject({ method: 'POST', url: '/api/payments', payload })
      expect(res.statusCode).toBe(400)
      expect(res.json().error).toContain(field)
    })
  })

  describe('subscriptions', () => {
    it('lists the seed subscriptions', async () => {
      const res = await t.app.inject('/api/subscriptions')
      expect(res.statusCode).toBe(200)
      const subs = res.json()
      expect(subs.map((s: { plan_type: string }) => s.plan_type)).toEqual(['basic', 'premium', 'family'])
      expect(Object.keys(subs[0]).sort()).toEqual(['end_date', 'id', 'plan_type', 'start_date', 'user_id'])
      expect(subs[0].start_date).toMatch(RFC3339)
      expect(subs[0].end_date).toMatch(RFC3339)
    })

    it('filters by ?user_id=, finds by ?id=, 404 when missing', async () => {
      expect((await t.app.inject('/api/subscriptions?user_id=3')).json()).toEqual([expect.objectContaining({ plan_type: 'family' })])
      expect((await t.app.inject('/api/subscriptions?id=2')).json()).toMatchObject({ id: 2, plan_type: 'premium' })
      expect((await t.app.inject('/api/subscriptions?id=999999')).statusCode).toBe(404)
    })

    it('creates a subscription', async () => {
      const payload = { user_id: 2, plan_type: 'premium', start_date: '2025-01-01T00:00:00Z', end_date: '2025-12-31T23:59:59Z' }
      const res = await t.app.inject({ method: 'POST', url: '/api/subscriptions', payload })
      expect(res.statusCode).toBe(201)
      const sub = res.json()
      expect(sub).toMatchObject({ id: expect.any(Number), user_id: 2, plan_type: 'premium' })
      expect(Date.parse(sub.start_date)).toBe(Date.parse(payload.start_date))
      expect(Date.parse(sub.end_date)).toBe(Date.parse(payload.end_date))
    })

    it.each([
      [{ plan_type: 'basic', start_date: '2025-01-01T00:00:00Z', end_date: '2025-02-01T00:00:00Z' }, 'user_id'],
      [{ user_id: 1, start_date: '2025-01-01T00:00:00Z', end_date: '2025-02-01T00:00:00Z' }, 'plan_type'],
      [{ user_id: 1, plan_type: 'basic', end_date: '2025-02-01T00:00:00Z' }, 'start_date'],
      [{ user_id: 1, plan_type: 'basic', start_date: 'yesterday', end_date: '2025-02-01T00:00:00Z' }, 'start_date'],
      [{ user_id: 1, plan_type: 'basic', start_date: '2025-03-01T00:00:00Z', end_date: '2025-02-30T00:00:00Z' }, 'end_date'],
      [{ user_id: 999999, plan_type: 'basic', start_date: '2025-01-01T00:00:00Z', end_date: '2025-02-01T00:00:00Z' }, 'user_id'],
    ])('400 naming the field for %j', async (payload, field) => {
      const res = await t.app.inject({ method: 'POST', url: '/api/subscriptions', payload })
      expect(res.statusCode).toBe(400)
      expect(res.json().error).toContain(field)
    })

    it('405 for other methods', async () => {
      expect((await t.app.inject({ method: 'PUT', url: '/api/subscriptions' })).statusCode).toBe(405)
      expect((await t.app.inject({ method: 'PATCH', url: '/api/payments' })).statusCode).toBe(405)
    })
  })
})
