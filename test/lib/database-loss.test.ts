// A service whose database goes away answers 503 JSON quickly (no hang, no crash) and
// recovers by itself when the database is back.
import { afterAll, beforeAll, expect, it } from 'vitest'
import { monolithApp, openDb } from '../helpers/apps.ts'
import { pgAdminUrl, testDatabase } from '../helpers/infra.ts'
import type { TestDatabase } from '../../dev/pg-admin.ts'
import { startTcpForwarder, type TcpForwarder } from '../helpers/tcp-forwarder.ts'
import { metric } from '../helpers/metrics.ts'

let database: TestDatabase
let forwarder: TcpForwarder

beforeAll(async () => {
  database = await testDatabase()
  const pg = new URL(pgAdminUrl())
  forwarder = await startTcpForwarder(pg.hostname, Number(pg.port || 5432))
})
afterAll(async () => {
  await forwarder?.close()
  await database?.drop()
})

it('answers 503 while the database is gone and 200 again once it is back', async () => {
  const url = new URL(database.url)
  url.port = String(forwarder.port)
  const db = openDb(url.toString(), { connectTimeoutMs: 1_000, statementTimeoutMs: 2_000 })
  const app = monolithApp(db)

  expect((await app.inject('/api/users')).statusCode).toBe(200)
  const scrape = async () => (await app.inject('/metrics')).body
  const before = await scrape()
  expect(metric(before, 'outbox_pending_read_ok')).toBe(1)
  expect(metric(before, 'outbox_pending_events')).toBeGreaterThanOrEqual(0)

  await forwarder.cut()
  for (const path of ['/api/users', '/api/movies', '/api/payments?id=1', '/api/subscriptions']) {
    const res = await app.inject(path)
    expect(res.statusCode, path).toBe(503)
    expect(res.json()).toEqual({ error: 'database unavailable, try again shortly' })
    expect(res.headers['retry-after']).toBe('1')
  }
  const write = await app.inject({ method: 'POST', url: '/api/users', payload: { username: 'lost', email: 'lost@example.com' } })
  expect(write.statusCode).toBe(503)
  expect((await app.inject('/ready')).statusCode).toBe(503)
  // Liveness does not depend on the database: restarting the process would not help.
  expect((await app.inject('/health')).statusCode).toBe(200)
  // The outbox gauges say "unknown", not the last value read (a stale 0 would hide stuck events).
  await new Promise((r) => setTimeout(r, 150)) // past the 100 ms the gauges share one read
  const during = await scrape()
  expect(metric(during, 'outbox_pending_read_ok')).toBe(0)
  expect(metric(during, 'outbox_pending_events')).toBeNaN()
  expect(metric(during, 'outbox_oldest_pending_age_seconds')).toBeNaN()

  await forwarder.restore()
  await expect.poll(async () => (await app.inject('/api/users')).statusCode, { timeout: 10_000, interval: 100 }).toBe(200)
  expect((await app.inject('/ready')).statusCode).toBe(200)
  await new Promise((r) => setTimeout(r, 150))
  const after = await scrape()
  expect(metric(after, 'outbox_pending_read_ok')).toBe(1)
  expect(metric(after, 'outbox_oldest_pending_age_seconds')).not.toBeNaN()
  expect((await app.inject('/api/users')).json().map((u: { username: string }) => u.username)).not.toContain('lost')

  await app.close()
  await db.close()
})

it('answers 503 when the database hangs (no answer at all) instead of hanging the request', async () => {
  const pg = new URL(pgAdminUrl())
  const hanging = await startTcpForwarder(pg.hostname, Number(pg.port || 5432))
  const url = new URL(database.url)
  url.port = String(hanging.port)
  const db = openDb(url.toString(), { connectTimeoutMs: 500, statementTimeoutMs: 300 })
  const app = monolithApp(db)
  expect((await app.inject('/api/movies')).statusCode).toBe(200)

  hanging.stall()
  const res = await app.inject('/api/movies?id=1')
  expect(res.statusCode).toBe(503)
  expect(res.json()).toEqual({ error: 'database unavailable, try again shortly' })

  await app.close()
  await db.close()
  await hanging.close()
})
