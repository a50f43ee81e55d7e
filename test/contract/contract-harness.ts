// Runs a table of legacy answers (one row per request, the status the Go monolith gave) against
// the port on PostgreSQL and on PGlite, directly (app.inject) and as a client through the proxy
// (the real services listening on ports, the proxy built in front of them). Where the port's
// answer differs, the row says so and why (docs/contract.md); a 2xx has the legacy's shape, and a
// created row reads back the same through ?id=. Every broken rule the rows name is counted.
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RuleName } from '../../lib/contract/rules.ts'
import type { Database } from '../../lib/db/database.ts'
import { buildApp as buildProxy } from '../../proxy/app.ts'
import { loadConfig as proxyConfig } from '../../proxy/config.ts'
import { monolithApp, moviesServiceApp } from '../helpers/apps.ts'
import { backends, type OpenBackend } from '../helpers/backends.ts'
import { captureLogs } from '../helpers/logs.ts'
import { metric } from '../helpers/metrics.ts'
import { flagsFileAt, routesFileWithoutWriter } from '../proxy/proxy-harness.ts'

/** Go's RFC 3339 as json.Marshal prints a time.Time read from PostgreSQL: UTC, fraction trimmed. */
export const GO_RFC3339_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,5}[1-9])?Z$/

type FieldType = 'integer' | 'number' | 'string' | 'string[]' | 'timestamp'

export interface Endpoint {
  path: string
  /** The success object's fields in the legacy JSON's order, with their types. */
  shape: Record<string, FieldType>
  /** Services serving the path (the movies service serves /api/movies too). */
  services: ServiceName[]
}

export interface ContractCase {
  name: string
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH'
  /** `{u}` anywhere in url or body is replaced by a value unique to each run (usernames are unique). */
  url?: string
  /** A JSON value, or a raw string sent as an application/json body. */
  body?: unknown
  raw?: string
  /** Content-Type of the body; default application/json. */
  contentType?: string
  /** The status the legacy Go program answered. */
  legacy: number
  /** Where the port answers differently: its status and why (a documented legacy defect or the contract). */
  port?: { status: number; why: string }
  /** The response body, matched with toMatchObject (after `{u}` replacement). */
  response?: unknown
  /** For a 4xx: the error text must match (e.g. name the field). */
  error?: RegExp
  /** The observed rule this request breaks: counted, never refused by default. */
  rule?: RuleName
  /** Extra checks of a successful body. */
  check?: (body: unknown) => void
  /** Runs on the database before the request (e.g. frees a unique value the row needs each run). */
  setup?: (db: Database) => Promise<unknown>
}

export type ServiceName = 'monolith' | 'movies-service'

export interface Transport {
  name: string
  service: ServiceName
  send(request: { method: string; url: string; payload?: string; headers: Record<string, string> }): Promise<{ status: number; body: string }>
}

function substitute<T>(value: T, u: string): T {
  if (typeof value === 'string') return value.replaceAll('{u}', u) as T
  if (Array.isArray(value)) return value.map((v) => substitute(v, u)) as T
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, u)])) as T
  return value
}

function expectShape(value: unknown, shape: Endpoint['shape'], where: string): void {
  expect(value, where).toBeTypeOf('object')
  const record = value as Record<string, unknown>
  expect(Object.keys(record), `${where}: fields in the legacy order`).toEqual(Object.keys(shape))
  for (const [field, type] of Object.entries(shape)) {
    const v = record[field]
    if (type === 'integer') expect(Number.isInteger(v), `${where}.${field} integer`).toBe(true)
    else if (type === 'number') expect(v, `${where}.${field}`).toBeTypeOf('number')
    else if (type === 'string') expect(v, `${where}.${field}`).toBeTypeOf('string')
    else if (type === 'string[]') expect(Array.isArray(v) && v.every((g) => typeof g === 'string'), `${where}.${field} string[]`).toBe(true)
    else expect(v, `${where}.${field} as Go prints a timestamp`).toMatch(GO_RFC3339_UTC)
  }
}

interface Stack {
  backend: OpenBackend
  services: Map<ServiceName, FastifyInstance>
  proxy: FastifyInstance
  transports: Transport[]
}

async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

async function startStack(open: () => Promise<OpenBackend>, wanted: ServiceName[]): Promise<Stack> {
  const backend = await open()
  const monolith = monolithApp(backend.db)
  const movies = moviesServiceApp(backend.db)
  const [monolithUrl, moviesUrl] = await Promise.all([listen(monolith), listen(movies)])
  const { app: proxy } = await buildProxy(
    proxyConfig({
      MONOLITH_URL: monolithUrl,
      MOVIES_SERVICE_URL: moviesUrl,
      EVENTS_SERVICE_URL: monolithUrl, // not used here
      FLAGS_FILE: flagsFileAt(0),
      // Both services on one database here: X-Backend picks the side of a write too.
      ROUTES_FILE: routesFileWithoutWriter(),
      ALLOW_BACKEND_OVERRIDE: 'true',
      RATE_LIMIT_MAX: '0',
    }),
    { logger: captureLogs().logger },
  )
  await proxy.ready()
  const services = new Map<ServiceName, FastifyInstance>([
    ['monolith', monolith],
    ['movies-service', movies],
  ])
  const direct = (service: ServiceName): Transport => ({
    name: `${service} directly`,
    service,
    async send(request) {
      const res = await services.get(service)!.inject({ ...request, method: request.method as 'GET' })
      return { status: res.statusCode, body: res.body }
    },
  })
  const viaProxy = (service: ServiceName): Transport => ({
    name: `${service} through the proxy`,
    service,
    async send(request) {
      // X-Backend picks the side of the split for /api/movies; other paths always go to the monolith.
      const headers = { ...request.headers, 'x-backend': service === 'movies-service' ? 'target' : 'legacy' }
      const res = await proxy.inject({ ...request, headers, method: request.method as 'GET' })
      const upstream = res.headers['x-upstream']
      if (upstream !== service) throw new Error(`the proxy sent ${request.method} ${request.url} to ${String(upstream)}, not ${service}`)
      return { status: res.statusCode, body: res.body }
    },
  })
  const transports = wanted.flatMap((s) => [direct(s), viaProxy(s)])
  return { backend, services, proxy, transports }
}

async function stopStack(stack: Stack | undefined): Promise<void> {
  if (!stack) return
  await stack.proxy.close()
  for (const app of stack.services.values()) await app.close()
  await stack.backend.close()
}

/**
 * One row of a table against one way of reaching the service (`send`), with `u` for its `{u}`:
 * the status the legacy gave (or the port's documented one), the legacy's shape, the follow-up
 * read of a created row. Resolves with the rule the row breaks when it succeeded (to be counted).
 */
export async function runContractCase(endpoint: Endpoint, row: ContractCase, u: string, send: Transport['send']): Promise<RuleName | undefined> {
  const method = row.method ?? (row.body === undefined && row.raw === undefined ? 'GET' : 'POST')
  const url = substitute(row.url ?? endpoint.path, u)
  const payload = row.raw !== undefined ? substitute(row.raw, u) : (row.body === undefined ? undefined : JSON.stringify(substitute(row.body, u)))
  const headers: Record<string, string> = payload === undefined ? {} : { 'content-type': row.contentType ?? 'application/json' }
  const res = await send({ method, url, payload, headers })

  const expected = row.port?.status ?? row.legacy
  expect(res.status, `${method} ${url} ${payload ?? ''} -> ${res.body}`).toBe(expected)
  if (row.port) {
    // The port may differ only where the legacy failed (500) or the contract forbids the request.
    expect(row.legacy === 500 || (row.port.status >= 400 && row.port.status < 500), row.port.why).toBe(true)
  }
  const body = JSON.parse(res.body) as unknown
  if (expected >= 400) {
    expect(body).toEqual({ error: expect.any(String) })
    if (row.error) expect((body as { error: string }).error).toMatch(row.error)
    return undefined
  }
  if (Array.isArray(body)) body.forEach((item, i) => expectShape(item, endpoint.shape, `[${i}]`))
  else expectShape(body, endpoint.shape, 'body')
  if (row.response !== undefined) expect(body).toMatchObject(substitute(row.response, u) as object)
  row.check?.(body)
  if (method === 'POST' && expected === 201) {
    // The follow-up read a client makes answers the same object.
    const id = (body as { id: number }).id
    const read = await send({ method: 'GET', url: `${endpoint.path}?id=${id}`, headers: {} })
    expect([read.status, JSON.parse(read.body)]).toEqual([200, body])
  }
  return row.rule
}

/** The table `cases` for `endpoint`, on both backends, through every transport. */
export function describeContract(endpoint: Endpoint, cases: ContractCase[]): void {
  describe.each(backends)(`${endpoint.path}: the legacy's answers (%s)`, (backendName, open) => {
    let stack: Stack | undefined
    const expectedViolations = new Map<string, number>()
    let seq = 0

    beforeAll(async () => {
      stack = await startStack(open, endpoint.services)
    }, 60_000)
    afterAll(() => stopStack(stack))

    const transportNames = endpoint.services.flatMap((s) => [`${s} directly`, `${s} through the proxy`])
    describe.each(transportNames)('%s', (transportName) => {
      it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, row) => {
        const transport = stack!.transports.find((t) => t.name === transportName)!
        const u = `${backendName}-${transport.service}-${transportName.endsWith('proxy') ? 'p' : 'd'}-${seq++}`
        await row.setup?.(stack!.backend.db)
        const broken = await runContractCase(endpoint, row, u, (request) => transport.send(request))
        if (broken) {
          const key = `${transport.service} ${broken}`
          expectedViolations.set(key, (expectedViolations.get(key) ?? 0) + 1)
        }
      })
    })

    it('counted every broken rule in contract_rule_violations_total{service,rule}', async () => {
      if (cases.some((c) => c.rule)) expect(expectedViolations.size, 'rows breaking rules ran').toBeGreaterThan(0)
      for (const service of endpoint.services) {
        const text = (await stack!.services.get(service)!.inject('/metrics')).body
        for (const name of new Set(cases.flatMap((c) => (c.rule ? [c.rule] : [])))) {
          const series = `contract_rule_violations_total{service="${service}",rule="${name}"}`
          expect(metric(text, series), series).toBe(expectedViolations.get(`${service} ${name}`) ?? 0)
        }
      }
    })
  })
}
