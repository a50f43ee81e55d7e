import { describe, expect, it } from 'vitest'
import { ConfigError } from '../../lib/config.ts'
import { loadConfig as monolithConfig, ENV_VARS as MONOLITH_VARS } from '../../monolith/config.ts'
import { loadConfig as moviesConfig } from '../../movies-service/config.ts'

describe('service configuration', () => {
  it('has the legacy defaults', () => {
    const config = monolithConfig({})
    expect(config.port).toBe(8080)
    expect(config.databaseUrl).toBe('postgres://postgres:postgres@localhost:5432/cinemaabyss?sslmode=disable')
    expect(moviesConfig({}).port).toBe(8081)
    expect(moviesConfig({}).redisUrl).toBeUndefined()
  })

  it('reads the legacy variable names; DB_CONNECTION_STRING wins over DATABASE_URL', () => {
    const config = monolithConfig({ PORT: '9000', DB_CONNECTION_STRING: 'postgres://a@db/x', DATABASE_URL: 'postgres://b@db/y' })
    expect(config.port).toBe(9000)
    expect(config.databaseUrl).toBe('postgres://a@db/x')
    expect(monolithConfig({ DATABASE_URL: 'postgres://b@db/y' }).databaseUrl).toBe('postgres://b@db/y')
    expect(MONOLITH_VARS).toEqual(expect.arrayContaining(['PORT', 'DB_CONNECTION_STRING', 'DATABASE_URL', 'LOG_LEVEL']))
  })

  it.each([
    [{ PORT: 'eighty' }, /PORT must be an integer/],
    [{ PORT: '70000' }, /PORT must be between 0 and 65535/],
    [{ DB_CONNECTION_STRING: 'not a url' }, /DB_CONNECTION_STRING must be a URL/],
    [{ DATABASE_URL: 'mysql://x/y' }, /DATABASE_URL must use postgres or postgresql/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL must be one of/],
  ])('fails naming the variable for %j', (env, message) => {
    expect(() => monolithConfig(env)).toThrow(ConfigError)
    expect(() => monolithConfig(env)).toThrow(message)
  })

  it('names every bad variable at once', () => {
    const attempt = () => moviesConfig({ PORT: 'x', REDIS_URL: 'http://cache', CACHE_TTL_SECONDS: '0' })
    expect(attempt).toThrow(/PORT must be an integer.*; REDIS_URL must use redis or rediss.*; CACHE_TTL_SECONDS must be at least 1, got 0/)
  })
})
