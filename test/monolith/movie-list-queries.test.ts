// The legacy list handler ran 1 + N queries (one per movie for its genres); the port runs one.
import { expect, it } from 'vitest'
import { createMovieRepository } from '../../lib/movies/movie-repository.ts'
import { monolithApp } from '../helpers/apps.ts'
import { countingDb } from '../helpers/counting-db.ts'
import { useTestDatabase } from '../helpers/infra.ts'

const testDb = useTestDatabase()

it('GET /api/movies runs exactly one SQL statement for 5 movies and for 105', async () => {
  const counted = countingDb(testDb.db)
  const app = monolithApp(counted)

  const before = await app.inject('/api/movies')
  expect(before.json()).toHaveLength(5)
  expect(counted.statements).toHaveLength(1)

  const repo = createMovieRepository(testDb.db, 'legacy')
  for (let i = 0; i < 100; i++) await repo.create({ title: `Movie ${i}`, description: 'd', genres: ['A', 'B'], rating: 5 })

  counted.statements.length = 0
  const after = await app.inject('/api/movies')
  const movies = after.json()
  expect(movies).toHaveLength(105)
  expect(movies[104].genres).toEqual(['A', 'B'])
  expect(counted.statements).toHaveLength(1)
  await app.close()
})

it('writes a movie and its genres in one transaction: a failing genre insert leaves no movie', async () => {
  const repo = createMovieRepository(testDb.db, 'legacy')
  const count = async () => Number((await testDb.db.query<{ n: string }>('SELECT count(*) AS n FROM movies')).rows[0].n)
  const before = await count()
  // 51 characters: movie_genres.genre is VARCHAR(50), so the second statement fails after the first succeeded.
  await expect(repo.create({ title: 'Half written', description: 'd', genres: ['x'.repeat(51)], rating: 5 })).rejects.toThrow()
  expect(await count()).toBe(before)
})
