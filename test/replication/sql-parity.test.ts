// The parity digest computed by PostgreSQL (lib/parity/sql-parity.ts) is the reference digest of
// lib/parity/digest.ts over the API's answers, byte for byte — on real PostgreSQL and on PGlite
// (npm start) — for movies whose text JSON must escape (quotes, backslashes, control characters,
// non-ASCII, astral characters), genres in several orders, integral and fractional ratings, no
// description; and the bucket of a text id is the same on both sides.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Database } from '../../lib/db/database.ts'
import { migrate } from '../../lib/db/migrate.ts'
import { createPgliteDatabase } from '../../lib/db/pglite-database.ts'
import { MOVIE_PARITY } from '../../lib/movies/movie-parity.ts'
import { createMovieRepository } from '../../lib/movies/movie-repository.ts'
import { bucketItems, bucketOf, digest } from '../../lib/parity/digest.ts'
import { sqlParitySource, type ParityDeclaration } from '../../lib/parity/sql-parity.ts'
import { useTestDatabase } from '../helpers/infra.ts'

const test = useTestDatabase()

const TRICKY = [
  { title: 'Quote " and \\ backslash', description: 'tab\there, newline\nthere, bell\u0007, esc\u001b, del\u007f', rating: 7, genres: ['Zeta', 'alpha', 'Beta'] },
  { title: 'Ünïcödé — 映画 😀 \u2028\u2029', description: '</script> & <b>', rating: 8.9, genres: ['Drama'] },
  { title: 'No genres, rating 0', description: '', rating: 0, genres: [] },
  { title: 'Ten', description: 'x', rating: 10, genres: ['b', 'a', 'B', 'A', '_', '1'] },
]

async function fill(db: Database): Promise<void> {
  const repository = createMovieRepository(db, 'legacy')
  for (const m of TRICKY) await repository.create(m)
  // A description the API cannot write but the legacy schema allows: NULL answers "".
  await db.query(`INSERT INTO movies (title, description, rating) VALUES ('Null description', NULL, NULL)`)
}

async function expectReferenceDigest(db: Database): Promise<void> {
  const list = await createMovieRepository(db, 'legacy').list()
  const records = list.map((m) => ({ id: String(m.id), document: m }))
  const source = sqlParitySource(db, MOVIE_PARITY)
  for (const buckets of [1, 3, 64]) {
    expect(await source.summary(buckets)).toEqual(digest(records, buckets))
  }
  for (let bucket = 0; bucket < 3; bucket++) expect(await source.bucket(bucket, 3)).toEqual(bucketItems(records, bucket, 3))
  const ids = list.slice(0, 3).map((m) => String(m.id))
  expect(await source.documents([...ids, '999999', 'not-a-number'])).toEqual(Object.fromEntries(list.slice(0, 3).map((m) => [String(m.id), m])))
}

describe('on PostgreSQL', () => {
  it('is the reference digest of the API answers, byte for byte', async () => {
    await fill(test.db)
    await expectReferenceDigest(test.db)
  })

  it('buckets text ids exactly as digest.ts does (a generic declaration)', async () => {
    await test.db.query(`CREATE TABLE parity_text_keys (code text PRIMARY KEY, label text NOT NULL)`)
    const codes = ['0', '17', '000123', '-5', 'abc', 'ÄÖ', '1e3', '999999999999999', '1000000000000000']
    for (const code of codes) await test.db.query('INSERT INTO parity_text_keys VALUES ($1, $2)', [code, `label ${code}`])
    const declaration: ParityDeclaration = { table: 'parity_text_keys', alias: 'k', key: 'k.code', keyType: 'text', document: `'{"code":' || to_json(k.code)::text || ',"label":' || to_json(k.label)::text || '}'` }
    const records = codes.map((code) => ({ id: code, document: { code, label: `label ${code}` } }))
    const source = sqlParitySource(test.db, declaration)
    expect(await source.summary(7)).toEqual(digest(records, 7))
    for (const code of codes) expect(Object.keys(await source.bucket(bucketOf(code, 7), 7))).toContain(code)
    expect(await source.documents(['abc', 'zzz'])).toEqual({ abc: { code: 'abc', label: 'label abc' } })
  })
})

describe('on PGlite (npm start)', () => {
  let db: Database
  beforeAll(async () => {
    db = await createPgliteDatabase()
    await migrate(db)
  }, 60_000)
  afterAll(async () => db?.close())

  it('is the reference digest of the API answers, byte for byte', async () => {
    await fill(db)
    await expectReferenceDigest(db)
  })
})
