// Redis that checks who is talking (issue 32): a real redis-server of this file's own with
// `requirepass` and an ACL user. The proxy's shared rate-limit counters and the movies service's
// read cache connect with the credentials in REDIS_URL (redis://user:password@host:port, parsed
// by each service's config.ts) and work; without them, or with a wrong password, the server
// refuses every command: nothing is written, the services still answer (Redis is optional to
// them), and the refusal is logged with Redis's own reason.
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { connect as connectTcp } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Redis as RawRedis } from 'ioredis'
import { createRedis, type Redis } from '../../lib/redis.ts'
import { loadConfig as loadProxyConfig } from '../../proxy/config.ts'
import { loadConfig as loadMoviesConfig } from '../../movies-service/config.ts'
import { moviesServiceApp } from '../helpers/apps.ts'
import { useTestDatabase } from '../helpers/infra.ts'
import { captureLogs } from '../helpers/logs.ts'
import { eventually } from '../helpers/poll.ts'
import { startPrivateRedis, type PrivateServer } from '../helpers/private-servers.ts'
import { startProxy, startStubs, type Stubs } from '../proxy/proxy-harness.ts'

const DEFAULT_PASSWORD = 'default-user-secret-0123456789'
const USER = { name: 'edge', password: 'edge-user-secret-0123456789' }

const testDb = useTestDatabase()
let server: PrivateServer
let port: number
/** The test's own view of the server, authenticated as the default user. */
let admin: RawRedis
let stubs: Stubs
const clients: Redis[] = []

beforeAll(async () => {
  server = await startPrivateRedis({ password: DEFAULT_PASSWORD, users: [USER] })
  port = Number(new URL(server.url).port)
  admin = new RawRedis(`redis://:${DEFAULT_PASSWORD}@127.0.0.1:${port}`)
  stubs = await startStubs()
})
afterAll(async () => {
  for (const c of clients) c.disconnect()
  admin?.disconnect()
  await stubs?.close()
  await server?.stop()
})

const urls = {
  aclUser: () => `redis://${USER.name}:${USER.password}@127.0.0.1:${port}`,
  defaultUser: () => `redis://:${DEFAULT_PASSWORD}@127.0.0.1:${port}`,
  none: () => `redis://127.0.0.1:${port}`,
  wrong: () => `redis://${USER.name}:not-the-password@127.0.0.1:${port}`,
}

/** A client as server.ts builds it, from REDIS_URL as the service's config.ts parsed it. */
function connect(redisUrl: string, opts: { keyPrefix?: string } = {}) {
  const logs = captureLogs('warn')
  const client = createRedis(redisUrl, logs.logger, { commandTimeoutMs: 1_000, ...opts })
  clients.push(client)
  return { client, logs }
}

it('the server refuses a command without the password (the RESP exchange itself)', async () => {
  const socket = connectTcp(port, '127.0.0.1')
  try {
    await once(socket, 'connect')
    socket.write('SET k v\r\n')
    const [reply] = await once(socket, 'data')
    expect(String(reply)).toMatch(/^-NOAUTH/)
  } finally {
    socket.destroy()
  }
})

describe('the proxy\'s shared rate-limit counters', () => {
  const start = async (redisUrl: string) => {
    // REDIS_URL with credentials is what the proxy's config accepts and hands to createRedis.
    const config = loadProxyConfig({ REDIS_URL: redisUrl })
    expect(config.redisUrl).toBe(redisUrl)
    const prefix = `test:rl:${randomUUID()}:`
    const { client, logs } = connect(config.redisUrl!)
    const proxy = await startProxy(stubs, { RATE_LIMIT_MAX: '3', RATE_LIMIT_KEY_PREFIX: prefix, RATE_LIMIT_SYNC_MS: '1' }, { redis: client })
    return { proxy, prefix, logs, client }
  }

  for (const [who, url] of [['an ACL user', urls.aclUser], ['the default user with requirepass', urls.defaultUser]] as const) {
    it(`count in Redis when REDIS_URL carries ${who}'s password`, async () => {
      const { proxy, prefix } = await start(url())
      try {
        for (let i = 0; i < 2; i++) expect((await proxy.app.inject('/api/users')).statusCode).toBe(200)
        await eventually('the count reaches Redis', async () => Number(await admin.get(`${prefix}127.0.0.1`)) === 2, 10_000)
      } finally {
        await proxy.close()
      }
    })
  }

  for (const [what, url] of [['without credentials', urls.none], ['with a wrong password', urls.wrong]] as const) {
    it(`are refused ${what}: nothing reaches Redis, the refusal is logged, requests still answered`, async () => {
      const { proxy, prefix, logs } = await start(url())
      try {
        const statuses = []
        for (let i = 0; i < 4; i++) statuses.push((await proxy.app.inject('/api/users')).statusCode)
        // The replica counts alone: the limit still holds, without Redis.
        expect(statuses).toEqual([200, 200, 200, 429])
        await eventually('the refusal is logged', async () => logs.lines.some((l) => /NOAUTH|WRONGPASS/.test(String(l.err))), 10_000)
        expect(await admin.exists(`${prefix}127.0.0.1`)).toBe(0)
      } finally {
        await proxy.close()
      }
    })
  }
})

describe('the movies service\'s read cache', () => {
  const cacheOf = (redisUrl: string) => {
    const config = loadMoviesConfig({ REDIS_URL: redisUrl })
    const prefix = `test:cache:${randomUUID()}:`
    return { ...connect(config.redisUrl!, { keyPrefix: prefix }), prefix }
  }

  it('caches through an authenticated connection', async () => {
    const { client, prefix } = cacheOf(urls.aclUser())
    await once(client, 'ready')
    const app = moviesServiceApp(testDb.db, { redis: client })
    try {
      expect((await app.inject('/api/movies')).statusCode).toBe(200)
      expect(await admin.exists(`${prefix}movies:list`)).toBe(1)
    } finally {
      await app.close()
    }
  })

  it('is refused without the password: reads come from PostgreSQL, nothing is cached, the refusal is logged', async () => {
    const { client, prefix, logs } = cacheOf(urls.none())
    const app = moviesServiceApp(testDb.db, { redis: client })
    try {
      for (let i = 0; i < 2; i++) {
        const res = await app.inject('/api/movies')
        expect(res.statusCode).toBe(200)
        expect(res.json()).toHaveLength(5)
      }
      await eventually('the refusal is logged', async () => logs.lines.some((l) => /NOAUTH/.test(String(l.err))), 10_000)
      expect(await admin.exists(`${prefix}movies:list`)).toBe(0)
    } finally {
      await app.close()
    }
  })
})
