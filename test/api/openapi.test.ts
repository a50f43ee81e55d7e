// Every service serves the OpenAPI document of its routes, generated from their schemas
// (@fastify/swagger, registered in lib/http/create-app.ts), at GET /documentation/json; together
// they cover every path and method of the legacy contract, and the proxy documents its own API.
import { readFileSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { parse } from 'yaml'
import { createPgliteDatabase } from '../../lib/db/pglite-database.ts'
import type { Database } from '../../lib/db/database.ts'
import { migrate } from '../../lib/db/migrate.ts'
import { OPENAPI_PATH } from '../../lib/http/create-app.ts'
import { monolithApp, moviesServiceApp } from '../helpers/apps.ts'
import { startEventsApp } from '../events-service/support.ts'
import { startProxy, startStubs, type Stubs } from '../proxy/proxy-harness.ts'
import { legacySpecFile } from '../helpers/shared-reference.ts'

type OpenApiDocument = { openapi: string; info: { title: string }; paths: Record<string, Record<string, unknown>> }
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']

function legacyOperations(): string[] {
  const spec = parse(readFileSync(legacySpecFile(), 'utf8')) as OpenApiDocument
  return Object.entries(spec.paths).flatMap(([path, item]) => Object.keys(item).filter((m) => METHODS.includes(m)).map((m) => `${m.toUpperCase()} ${path}`))
}

const operations = (doc: OpenApiDocument) =>
  Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).filter((m) => METHODS.includes(m)).map((m) => `${m.toUpperCase()} ${path}`))

const documents: Record<string, OpenApiDocument> = {}
const apps: FastifyInstance[] = []
let db: Database
let stubs: Stubs

beforeAll(async () => {
  db = await createPgliteDatabase()
  await migrate(db)
  stubs = await startStubs()
  const proxy = await startProxy(stubs)
  const built: Record<string, FastifyInstance> = {
    monolith: monolithApp(db),
    'movies-service': moviesServiceApp(db),
    'events-service': (await startEventsApp(inject('kafkaBrokers').split(','))).app,
    // The proxy's own API (health, metrics, admin) is documented on its operators' listener.
    proxy: proxy.ops,
  }
  for (const [name, app] of Object.entries(built)) {
    apps.push(name === 'proxy' ? proxy.app : app) // closing the proxy's public app closes its operators' app too
    const res = await app.inject(OPENAPI_PATH)
    expect(res.statusCode, name).toBe(200)
    documents[name] = res.json()
  }
})

afterAll(async () => {
  for (const app of apps) await app.close()
  await stubs?.close()
  await db?.close()
})

describe('each service serves an OpenAPI 3 document of its routes', () => {
  for (const name of ['monolith', 'movies-service', 'events-service', 'proxy']) {
    it(name, () => {
      const doc = documents[name]
      expect(doc.openapi).toMatch(/^3\./)
      expect(doc.info.title).toBe(`CinemaAbyss ${name}`)
      expect(operations(doc)).toEqual(expect.arrayContaining(['GET /health', 'GET /ready', 'GET /metrics']))
      // The 405 answers and the document itself are not operations of the API.
      expect(operations(doc).filter((op) => /^(PUT|PATCH|DELETE|OPTIONS) \/api\//.test(op))).toEqual([])
      expect(Object.keys(doc.paths)).not.toContain(OPENAPI_PATH)
    })
  }
})

it('together the documents cover every path and method of the legacy contract', () => {
  const served = new Set(Object.values(documents).flatMap(operations))
  const legacy = legacyOperations()
  expect(legacy.length).toBeGreaterThan(10)
  expect(legacy.filter((op) => !served.has(op))).toEqual([])
})

it('each extracted route is documented by the service that serves it, with its request schema', () => {
  const ops = (name: string) => operations(documents[name])
  expect(ops('movies-service')).toEqual(expect.arrayContaining(['GET /api/movies', 'POST /api/movies', 'GET /api/movies/health']))
  expect(ops('events-service')).toEqual(expect.arrayContaining(['POST /api/events/movie', 'POST /api/events/user', 'POST /api/events/payment', 'GET /api/events/health']))
  expect(ops('monolith')).toEqual(expect.arrayContaining(['GET /api/users', 'POST /api/users', 'POST /api/payments', 'POST /api/subscriptions']))
  const createUser = documents.monolith.paths['/api/users'].post as { requestBody: { content: { 'application/json': { schema: { required: string[] } } } } }
  expect(createUser.requestBody.content['application/json'].schema.required).toEqual(expect.arrayContaining(['username', 'email']))
})

it("the proxy documents its own admin API", () => {
  const admin = operations(documents.proxy).filter((op) => / \/admin\//.test(op))
  expect(admin).toEqual(expect.arrayContaining(['GET /admin/state', 'PUT /admin/routes/{name}/rollout', 'GET /admin/explain']))
})
