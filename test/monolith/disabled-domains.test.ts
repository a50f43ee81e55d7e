// DISABLED_DOMAINS=movies: the monolith's movie part turned off for good once the movies
// service owns the catalog — every movie path answers 410 (the catalogue's DOMAIN_GONE), its
// parity endpoint too, while users, payments and subscriptions keep answering.
import { describe, expect, it } from 'vitest'
import { loadConfig } from '../../monolith/config.ts'
import { monolithApp } from '../helpers/apps.ts'
import { backends, useBackendApp } from '../helpers/backends.ts'

describe.each(backends)('the monolith with DISABLED_DOMAINS=movies on %s', (_backend, open) => {
  const t = useBackendApp(open, (db) => monolithApp(db, undefined, { DISABLED_DOMAINS: 'movies' }))

  it('answers 410 for every method on the movie paths, and its other domains as before', async () => {
    for (const [method, url] of [['GET', '/api/movies'], ['GET', '/api/movies?id=1'], ['POST', '/api/movies'], ['DELETE', '/api/movies/1'], ['GET', '/internal/parity']] as const) {
      const res = await t.app.inject({ method, url, ...(method === 'POST' ? { payload: { title: 'x', genres: ['Drama'] } } : {}) })
      expect([method, url, res.statusCode, res.json().error]).toEqual([method, url, 410, 'the movies domain is no longer served here: it moved to its own service'])
    }
    expect((await t.app.inject('/api/users')).statusCode).toBe(200)
    // Its movie replication is not there at all: no consumer, no movie_replication_* series.
    expect((await t.app.inject('/metrics')).body).not.toMatch(/^movie_replication_/m)
  })
})

describe.each(backends)('the monolith with every domain on %s', (_backend, open) => {
  const t = useBackendApp(open, (db) => monolithApp(db))

  it('replicates its movies (the series the switch takes away)', async () => {
    expect((await t.app.inject('/metrics')).body).toMatch(/^movie_replication_/m)
  })
})

describe('DISABLED_DOMAINS', () => {
  it('names an unknown domain', () => {
    expect(() => loadConfig({ DISABLED_DOMAINS: 'movies,films' })).toThrow(/DISABLED_DOMAINS.*films/)
    expect(loadConfig({ DISABLED_DOMAINS: 'movies' }).disabledDomains).toEqual(['movies'])
    expect(loadConfig({}).disabledDomains).toEqual([])
  })
})
