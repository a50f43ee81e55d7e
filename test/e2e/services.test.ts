// The two ported services as real processes, the way `npm run start:*` runs them.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pgAdminUrl, redisUrl, testDatabase } from '../helpers/infra.ts'
import { createEmptyDatabase, type TestDatabase } from '../../dev/pg-admin.ts'
import { REPO_ROOT, startService, type ServiceProcess } from '../helpers/processes.ts'

const run = promisify(execFile)

describe('monolith and movies-service processes', () => {
  let database: TestDatabase
  let monolith: ServiceProcess
  let movies: ServiceProcess

  beforeAll(async () => {
    database = await testDatabase()
    ;[monolith, movies] = await Promise.all([
      startService('monolith/server.ts', { DB_CONNECTION_STRING: database.url }),
      startService('movies-service/server.ts', {
        DB_CONNECTION_STRING: database.url,
        REDIS_URL: redisUrl(),
        CACHE_KEY_PREFIX: `e2e:${database.name}:`,
      }),
    ])
  })
  afterAll(async () => {
    await monolith?.stop()
    await movies?.stop()
    await database?.drop()
  })

  it('both answer GET /api/movies with the same JSON: the 5 seed movies', async () => {
    const [a, b] = await Promise.all([fetch(`${monolith.url}/api/movies`), fetch(`${movies.url}/api/movies`)])
    expect(a.status).toBe(200)
    expect(b.status).toBe(200)
    const [fromMonolith, fromMovies] = [await a.json(), await b.json()]
    expect(fromMonolith).toHaveLength(5)
    expect(fromMovies).toEqual(fromMonolith)
    expect(fromMovies[1]).toMatchObject({ title: 'The Godfather', genres: ['Crime', 'Drama'], rating: 9.2 })
  })

  it('movies-service answers its legacy health path', async () => {
    const res = await fetch(`${movies.url}/api/movies/health`)
    expect(await res.json()).toEqual({ status: true })
  })

  it('writes one JSON access-log line per request with the request id', async () => {
    const logged = await startService('monolith/server.ts', { DB_CONNECTION_STRING: database.url, LOG_LEVEL: 'info' })
    try {
      await fetch(`${logged.url}/api/users?id=1`, { headers: { 'x-request-id': 'e2e-trace-2' } })
      await expect.poll(() => logged.output()).toContain('e2e-trace-2')
      const lines = logged
        .output()
        .split('\n')
        .filter((l) => l.includes('e2e-trace-2'))
        .map((l) => JSON.parse(l))
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatchObject({ reqId: 'e2e-trace-2', method: 'GET', status: 200, msg: 'request', service: 'monolith' })
    } finally {
      expect(await logged.stop()).toBe(0)
    }
  })

  it('shuts down gracefully on SIGTERM: exit code 0', async () => {
    const extra = await startService('movies-service/server.ts', { DB_CONNECTION_STRING: database.url })
    expect(await extra.stop()).toBe(0) // stop() sends SIGTERM (SIGKILL only after 10 s)
  })
})

describe('start-up failures and migrations', () => {
  it('a bad variable stops the service at start with a message naming it', async () => {
    const failure = await run(process.execPath, ['monolith/server.ts'], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH, PORT: 'http', DB_CONNECTION_STRING: 'nope' },
    }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    )
    expect(failure?.code).toBe(1)
    expect(failure?.stderr).toContain('PORT must be an integer')
    expect(failure?.stderr).toContain('DB_CONNECTION_STRING must be a URL')
  })

  it('npm run db:migrate migrates and seeds an empty database, and a second run changes nothing', async () => {
    const empty = await createEmptyDatabase(pgAdminUrl())
    try {
      const env = { PATH: process.env.PATH, DB_CONNECTION_STRING: empty.url }
      const first = await run('npm', ['run', '--silent', 'db:migrate'], { cwd: REPO_ROOT, env })
      expect(first.stdout).toContain('applied 001_schema, 002_seed')
      const second = await run('npm', ['run', '--silent', 'db:migrate'], { cwd: REPO_ROOT, env })
      expect(second.stdout).toContain('database is up to date')
    } finally {
      await empty.drop()
    }
  })
})
