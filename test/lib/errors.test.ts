// The error catalogue: its docs table lists exactly its codes and statuses, the shared handler
// answers its errors (status, message, headers) and the database mapper turns PostgreSQL's
// failures into its codes. lib/http knows nothing of the database.
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { REPO_ROOT } from '../../dev/paths.ts'
import { DatabaseUnavailableError } from '../../lib/db/database.ts'
import { databaseErrors } from '../../lib/db/http-errors.ts'
import { errors, isCatalogueError } from '../../lib/errors.ts'
import { createHttpApp } from '../../lib/http/create-app.ts'
import { createLogger } from '../../lib/logger.ts'

describe('the catalogue', () => {
  it('names each error by its code and the docs table lists every code with its status', async () => {
    const table = await readFile(join(REPO_ROOT, 'docs/errors.md'), 'utf8')
    const documented = new Map([...table.matchAll(/^\| `(CA_ERR_\w+)` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])]))
    const defined = new Map(Object.entries(errors).map(([name, Ctor]) => {
      const error = new (Ctor as unknown as new () => { code: string; statusCode: number })()
      expect(error.code).toBe(`CA_ERR_${name}`)
      return [error.code, error.statusCode]
    }))
    expect(documented).toEqual(defined)
  })

  it('formats its messages from the arguments and is recognised by code', () => {
    const error = new errors.ROUTE_NOT_FOUND('users', 'movies, events')
    expect(error.message).toBe('no route named "users" (routes: movies, events)')
    expect(isCatalogueError(error)).toBe(true)
    expect(isCatalogueError({ code: 'CA_ERR_ROUTE_NOT_FOUND' })).toBe(true)
    expect(isCatalogueError(Object.assign(new Error('x'), { code: 'CA_ERR_NOPE' }))).toBe(false)
    expect(isCatalogueError(new Error('x'))).toBe(false)
  })

  it('lib/http does not import the database code', async () => {
    const dir = join(REPO_ROOT, 'lib/http')
    for (const file of await readdir(dir)) {
      expect(await readFile(join(dir, file), 'utf8'), file).not.toMatch(/from '\.\.\/db\//)
    }
  })
})

describe('the shared error handler', () => {
  let app: FastifyInstance
  afterEach(() => app?.close())

  function build(withDatabase: boolean) {
    app = createHttpApp({ logger: createLogger({ level: 'silent' }), bodyLimitBytes: 1024, errorMappers: withDatabase ? [databaseErrors] : [] })
    app.get('/body', async () => { throw new errors.BODY_TOO_LARGE(10) })
    app.get('/down', async () => { throw new DatabaseUnavailableError('database unavailable: ECONNREFUSED 10.0.0.5:5432') })
    app.get('/dup', async () => { throw Object.assign(new Error('duplicate key'), { code: '23505', detail: 'Key (email)=(a@b.c) already exists.' }) })
    app.get('/ref', async () => { throw Object.assign(new Error('fk'), { code: '23503', detail: 'Key (user_id)=(9) is not present in table "users".' }) })
    app.get('/nul', async () => { throw Object.assign(new Error('invalid byte sequence for encoding "UTF8": 0x00'), { code: '22021' }) })
    return app
  }

  it('answers a catalogue error with its status, message and headers', async () => {
    const res = await build(false).inject('/body')
    expect(res.statusCode).toBe(413)
    expect(res.headers.connection).toBe('close')
    expect(res.json()).toEqual({ error: 'request body is larger than 10 bytes' })
  })

  it('maps PostgreSQL failures only where the database mapper is registered', async () => {
    build(true)
    const down = await app.inject('/down')
    expect([down.statusCode, down.headers['retry-after'], down.json()]).toEqual([503, '1', { error: 'database unavailable, try again shortly' }])
    expect([(await app.inject('/dup')).statusCode, (await app.inject('/dup')).json()]).toEqual([409, { error: 'email already exists' }])
    expect([(await app.inject('/ref')).statusCode, (await app.inject('/ref')).json()]).toEqual([400, { error: 'user_id refers to a record that does not exist' }])
    expect((await app.inject('/nul')).json()).toEqual({ error: 'invalid value: invalid byte sequence for encoding "UTF8": 0x00' })
    await app.close()

    build(false)
    for (const path of ['/down', '/dup', '/ref']) {
      const res = await app.inject(path)
      expect([path, res.statusCode, res.json()]).toEqual([path, 500, { error: 'internal server error' }])
    }
  })
})
