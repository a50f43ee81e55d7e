// Kafka that checks who is talking (issue 32): a broker of this file's own with a SASL_PLAINTEXT
// listener and SCRAM users created at format time (dev/kafka/launcher.ts). The events service
// configured with KAFKA_SASL_* publishes through it; without the credentials, or with a wrong
// password, the broker refuses it and a POST answers the catalogue's 503 within the bound (no hang).
import { rmSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Kafka, logLevel } from 'kafkajs'
import { startKafka, type RunningKafka } from '../../dev/kafka/launcher.ts'
import { loadConfig } from '../../events-service/config.ts'
import { movieBody, readToEnd, startEventsApp, type EventsAppUnderTest } from './support.ts'

const SEND_TIMEOUT_MS = 1_500
// Send timeout plus generous slack for a busy 2-core machine: a bound on a hang, not a timing claim.
const ANSWER_BOUND_MS = SEND_TIMEOUT_MS + 5_000
const USER = { name: 'events', password: 'events-scram-secret-0123' }
const SHA256_USER = { name: 'relay', password: 'relay-scram-secret-4567', mechanism: 'SCRAM-SHA-256' as const }

let broker: RunningKafka
const apps: EventsAppUnderTest[] = []

beforeAll(async () => {
  broker = await startKafka({ sasl: { users: [USER, SHA256_USER] } })
}, 120_000)
afterAll(async () => {
  for (const a of apps) await a.app.close().catch(() => {})
  await broker?.stop()
  if (broker) rmSync(broker.dataDir, { recursive: true, force: true })
})

async function started(env: Record<string, string>): Promise<EventsAppUnderTest> {
  const svc = await startEventsApp(broker.saslBrokers, { KAFKA_SEND_TIMEOUT_MS: String(SEND_TIMEOUT_MS), KAFKA_CONSUMER_ENABLED: 'false', ...env })
  apps.push(svc)
  return svc
}

async function postMovie(svc: EventsAppUnderTest, i: number): Promise<{ status: number; ms: number; body: any }> {
  const t0 = Date.now()
  const res = await svc.app.inject({ method: 'POST', url: '/api/events/movie', payload: movieBody(i) })
  return { status: res.statusCode, ms: Date.now() - t0, body: res.json() }
}

describe('events service against a SASL/SCRAM listener', () => {
  it('publishes with its SCRAM-SHA-512 credentials; the event is in the topic', { timeout: 90_000 }, async () => {
    const svc = await started({ KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: USER.name, KAFKA_SASL_PASSWORD: USER.password })
    expect((await svc.app.inject({ method: 'GET', url: '/ready' })).statusCode).toBe(200)
    const answer = await postMovie(svc, 1)
    expect(answer.status).toBe(201)
    // Read back through the plaintext listener (the test's own view of the broker).
    const plain = new Kafka({ clientId: 'sasl-reader', brokers: broker.brokers, logLevel: logLevel.NOTHING })
    const messages = await readToEnd(plain, [svc.topics.movie])
    expect(messages.map((m) => m.event?.id)).toContain(answer.body.event.id)
  })

  it('SCRAM-SHA-256 works the same way', { timeout: 90_000 }, async () => {
    const svc = await started({ KAFKA_SASL_MECHANISM: 'scram-sha-256', KAFKA_SASL_USERNAME: SHA256_USER.name, KAFKA_SASL_PASSWORD: SHA256_USER.password })
    expect((await postMovie(svc, 2)).status).toBe(201)
  })

  for (const [what, env] of [
    ['without credentials', {}],
    ['with a wrong password', { KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: USER.name, KAFKA_SASL_PASSWORD: 'not-the-password' }],
    ['as an unknown user', { KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'mallory', KAFKA_SASL_PASSWORD: USER.password }],
  ] as const) {
    it(`is refused ${what}: not ready, and a POST answers 503 within the bound`, { timeout: 90_000 }, async () => {
      const svc = await started(env)
      expect((await svc.app.inject({ method: 'GET', url: '/ready' })).statusCode).toBe(503)
      for (let i = 0; i < 2; i++) {
        const answer = await postMovie(svc, 10 + i)
        expect(answer.status).toBe(503)
        expect(answer.body.error).toMatch(/not acknowledged by Kafka/)
        expect(answer.ms).toBeLessThan(ANSWER_BOUND_MS)
      }
    })
  }
})

describe('KAFKA_SASL_* and KAFKA_SSL* are checked at start, each problem named', () => {
  const load = (env: Record<string, string>) => () => loadConfig({ KAFKA_BROKERS: 'kafka:9092', ...env })

  it('parses a complete setting', () => {
    const config = load({ KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p', KAFKA_SSL: 'true' })()
    expect(config.kafkaSecurity).toEqual({ sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'p' }, ssl: true })
    expect(load({})().kafkaSecurity).toEqual({ sasl: undefined, ssl: false })
  })

  it('refuses partial or unknown settings', () => {
    expect(load({ KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'u' })).toThrow(/KAFKA_SASL_PASSWORD is required/)
    expect(load({ KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_PASSWORD: 'p' })).toThrow(/KAFKA_SASL_USERNAME is required/)
    expect(load({ KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' })).toThrow(/KAFKA_SASL_MECHANISM is not/)
    expect(load({ KAFKA_SASL_MECHANISM: 'gssapi', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' })).toThrow(/KAFKA_SASL_MECHANISM must be one of/)
    expect(load({ KAFKA_SSL: 'maybe' })).toThrow(/KAFKA_SSL must be true or false/)
    expect(load({ KAFKA_SSL_CA_FILE: '/nonexistent/ca.pem' })).toThrow(/KAFKA_SSL_CA_FILE: cannot read \/nonexistent\/ca.pem/)
    expect(load({ KAFKA_SSL: 'false', KAFKA_SSL_CA_FILE: '/nonexistent/ca.pem' })).toThrow(/KAFKA_SSL=false/)
  })
})
