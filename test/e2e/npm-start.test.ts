// `npm start` (the command in package.json's start script) as a newcomer runs it: no infrastructure variables, everything embedded, acting
// as a client through the proxy only; then Ctrl-C (SIGINT to the process group, as a terminal
// sends it) must stop everything cleanly.
import net from 'node:net'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { eventually } from '../helpers/poll.ts'
import { freePort } from '../helpers/processes.ts'
import { runStartCommand, type StartedSystem } from './start-command.ts'

let system: StartedSystem
let ports: Record<'proxy' | 'admin' | 'monolith' | 'movies' | 'events' | 'kafka', number>
let proxy: string
/** The proxy's operators' listener: console, admin API, metrics (127.0.0.1 only). */
let ops: string
let adminToken: string
const output = () => system.output()

const isListening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.once('connect', () => (socket.destroy(), resolve(true)))
    socket.once('error', () => resolve(false))
  })

beforeAll(async () => {
  ports = { proxy: await freePort(), admin: await freePort(), monolith: await freePort(), movies: await freePort(), events: await freePort(), kafka: await freePort() }
  // No database, Kafka, Redis or Unleash variables. The first run on a machine also downloads Kafka's jars.
  system = await runStartCommand(
    {
      LOG_LEVEL: 'info',
      PROXY_PORT: String(ports.proxy),
      ADMIN_PORT: String(ports.admin),
      MONOLITH_PORT: String(ports.monolith),
      MOVIES_PORT: String(ports.movies),
      EVENTS_PORT: String(ports.events),
      KAFKA_PORT: String(ports.kafka),
    },
    150_000,
  )
  proxy = `http://127.0.0.1:${ports.proxy}`
  ops = `http://127.0.0.1:${ports.admin}`
  adminToken = /Authorization: Bearer (\S+)/.exec(output())![1]
}, 180_000)

afterAll(() => system?.kill())

const call = async (path: string, init: RequestInit & { json?: unknown } = {}) => {
  const headers = new Headers(init.headers)
  if (init.json !== undefined) headers.set('content-type', 'application/json')
  // The admin API is on the operators' listener; everything else through the proxy, as a client.
  const res = await fetch((path.startsWith('/admin') ? ops : proxy) + path, { ...init, headers, body: init.json !== undefined ? JSON.stringify(init.json) : init.body })
  const text = await res.text()
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined }
}

it('shows one line per step as it happens, with the time since the start, then the banner', () => {
  const beforeBanner = output().slice(0, output().indexOf('CinemaAbyss edge is running'))
  const steps = [...beforeBanner.matchAll(/^ *(\d+\.\d) s {2}(.+)$/gm)].map((m) => ({ seconds: Number(m[1]), message: m[2] }))
  const seconds = steps.map((s) => s.seconds)
  expect(seconds).toEqual([...seconds].sort((a, b) => a - b))
  const index = (pattern: RegExp) => {
    const i = steps.findIndex((s) => pattern.test(s.message))
    expect(i, `a progress line matching ${pattern} in:\n${beforeBanner}`).toBeGreaterThanOrEqual(0)
    return i
  }
  const listening = (name: string, port: number) => index(new RegExp(`^${name} listening on http://127\\.0\\.0\\.1:${port}$`))
  expect(index(/^PostgreSQL: starting embedded PGlite/)).toBeLessThan(index(/^PostgreSQL: ready and migrated$/))
  expect(index(/^PostgreSQL: ready and migrated$/)).toBeLessThan(index(/^catalog-db: starting embedded PGlite/))
  expect(index(/^catalog-db: starting embedded PGlite/)).toBeLessThan(index(/^catalog-db: ready and migrated$/))
  expect(index(/^catalog-db: ready and migrated$/)).toBeLessThan(listening('monolith', ports.monolith))
  expect(listening('monolith', ports.monolith)).toBeLessThan(listening('movies-service', ports.movies))
  expect(listening('movies-service', ports.movies)).toBeLessThan(listening('proxy', ports.proxy))
  expect(index(/^Kafka jars: (cached|downloaded \d+ MB)/)).toBeLessThan(index(new RegExp(`^Kafka: broker starting on 127\\.0\\.0\\.1:${ports.kafka}`)))
  expect(index(/^Kafka: broker starting/)).toBeLessThan(index(/^Kafka: broker up/))
  expect(index(/^Kafka: broker up/)).toBeLessThan(listening('events-service', ports.events))
  expect(listening('events-service', ports.events)).toBe(steps.length - 1) // then the banner
})

it("logs kafkajs' start-up chatter (a new broker's coordinator, retried) below warn", () => {
  const warnings = output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line))
    .filter((entry) => entry.level >= 40 && entry.service === 'events-service')
  expect(warnings).toEqual([])
})

it('prints where everything is, proxy first, and which pieces are embedded', () => {
  const banner = output().slice(output().indexOf('CinemaAbyss edge is running'))
  expect(banner.indexOf(`127.0.0.1:${ports.proxy}`)).toBeLessThan(banner.indexOf(`127.0.0.1:${ports.monolith}`))
  expect(banner).toMatch(/PostgreSQL\s+embedded: embedded PGlite/)
  expect(banner).toMatch(/catalog-db\s+embedded: embedded PGlite/)
  expect(banner).toMatch(/Kafka\s+embedded: embedded Kafka/)
  expect(banner).toMatch(/Redis\s+embedded/)
  expect(banner).toMatch(/Flags\s+local file/)
})

it('prints the console URL (on the operators\' listener) and the admin token; the console answers there and the token opens its API', async () => {
  const banner = output().slice(output().indexOf('CinemaAbyss edge is running'))
  const consoleUrl = new RegExp(`Console\\s+(http://127\\.0\\.0\\.1:${ports.admin}/admin/)\\s`).exec(banner)?.[1]
  const token = /Admin token\s+(\S+)/.exec(banner)?.[1]
  expect([consoleUrl, token]).toEqual([`${ops}/admin/`, adminToken])
  // A fresh random token, strong enough for the proxy's own check.
  expect(token!.length).toBeGreaterThanOrEqual(24)
  expect((await fetch(`${proxy}/admin/`)).status).toBe(404) // not on the public port
  const page = await fetch(consoleUrl!)
  expect([page.status, page.headers.get('content-type')]).toEqual([200, expect.stringMatching(/^text\/html/)])
  expect((await call('/admin/traffic', { headers: { authorization: `Bearer ${token}` } })).status).toBe(200)
})

it('serves the whole API through the proxy and moves the movies route with the admin API', async () => {
  const movies = await call('/api/movies')
  expect(movies.status).toBe(200)
  expect(movies.body.map((m: { title: string }) => m.title)).toHaveLength(5)

  const user = await call('/api/users', { method: 'POST', json: { username: 'newcomer', email: 'newcomer@example.com' } })
  expect(user.status).toBe(201)
  const payment = await call('/api/payments', { method: 'POST', json: { user_id: user.body.id, amount: 12.5 } })
  expect(payment.status).toBe(201)
  expect(payment.body).toMatchObject({ user_id: user.body.id, amount: 12.5 })
  const subscription = await call('/api/subscriptions', {
    method: 'POST',
    json: { user_id: user.body.id, plan_type: 'premium', start_date: '2026-01-01T00:00:00Z', end_date: '2026-02-01T00:00:00Z' },
  })
  expect(subscription.status).toBe(201)

  const movie = await call('/api/movies', { method: 'POST', json: { title: 'Stalker', description: 'The Zone', genres: ['Sci-Fi', 'Drama'], rating: 8.1 } })
  expect(movie.status).toBe(201)
  const viaMonolith = await call(`/api/movies?id=${movie.body.id}`, { headers: { 'x-user-id': 'reader-1' } })
  expect(viaMonolith.headers.get('x-upstream')).toBe('monolith')
  expect(viaMonolith.body).toEqual(movie.body)

  const rollout = await call('/admin/routes/movies/rollout', { method: 'PUT', headers: { authorization: `Bearer ${adminToken}` }, json: { percent: 100 } })
  expect(rollout.status).toBe(200)
  // The movies service has its own catalog-db: the movie written on the monolith reaches it through Kafka.
  let replicated: unknown
  await eventually('the new movie replicated to catalog-db', async () => {
    const res = await call(`/api/movies?id=${movie.body.id}`, { headers: { 'x-user-id': 'user-0' } })
    expect(res.headers.get('x-upstream')).toBe('movies-service')
    replicated = res.status === 200 ? res.body : undefined
    return replicated !== undefined
  }, 30_000)
  expect(replicated).toEqual(movie.body)
  for (let i = 1; i < 20; i++) {
    const res = await call('/api/movies', { headers: { 'x-user-id': `user-${i}` } })
    expect(res.status).toBe(200)
    expect(res.headers.get('x-upstream')).toBe('movies-service')
    expect(res.body.map((m: { id: number }) => m.id)).toContain(movie.body.id)
  }
})

it('publishes the three kinds of events and consumes them', async () => {
  const sent = [
    await call('/api/events/movie', { method: 'POST', json: { movie_id: 7, title: 'Stalker', action: 'viewed', user_id: 1 } }),
    await call('/api/events/user', { method: 'POST', json: { user_id: 1, action: 'logged_in', timestamp: '2026-11-22T10:00:00Z' } }),
    await call('/api/events/payment', {
      method: 'POST',
      json: { payment_id: 1, user_id: 1, amount: 9.99, status: 'completed', timestamp: '2026-11-22T10:00:00Z' },
    }),
  ]
  for (const res of sent) {
    expect(res.status).toBe(201)
    expect(res.headers.get('x-upstream')).toBe('events-service')
  }
  // The service's own consumer logs one "event processed" line per event it consumed.
  const processedIds = () =>
    output()
      .split('\n')
      .filter((line) => line.includes('"msg":"event processed"'))
      .map((line) => JSON.parse(line).id)
  for (const res of sent) await expect.poll(processedIds, { timeout: 30_000 }).toContain(res.body.event.id)
})

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

it('publishes what the services create: a movie created through the proxy shows up once in the events service\'s log', async () => {
  const movie = await call('/api/movies', { method: 'POST', json: { title: 'Solaris', description: 'The ocean', genres: ['Sci-Fi'], rating: 8 } })
  expect(movie.status).toBe(201)
  // The monolith's outbox relay publishes it to movie-events; the events service consumes it.
  const processedMovie = () =>
    output()
      .split('\n')
      .filter((line) => line.includes('"msg":"event processed"'))
      .map((line) => JSON.parse(line))
      // The outbox's event ids are UUIDs (events POSTed to the events service look different).
      .filter((line) => line.service === 'events-service' && line.topic === 'movie-events' && line.key === String(movie.body.id) && UUID.test(line.id))
  await expect.poll(() => processedMovie().length, { timeout: 30_000 }).toBe(1)
  expect(processedMovie()[0].type).toBe('movie')
})

it('stops on Ctrl-C within 10 s with exit code 0 and nothing left listening', async () => {
  // The bound on a clean stop: past it the process counts as hung.
  const timeout = new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10_000).unref())
  const outcome = await Promise.race([system.interrupt(), timeout])
  expect(outcome).toBe(0)
  for (const port of Object.values(ports)) expect(await isListening(port), `port ${port}`).toBe(false)
}, 20_000)
