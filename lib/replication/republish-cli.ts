// `npm run replication:republish`: puts the current state of every movie this store wrote back on
// the movie-state topic (through the outbox: the store's service relays it), for a topic that lost
// data. Same versions: a replica that has them skips them. Also publishes the movies never
// published. Env: DB_CONNECTION_STRING (the store), REPLICATION_STORE (legacy | catalog: which
// side this store is).
import { databaseEnv, env, parseEnv } from '../config.ts'
import { createPgDatabaseFromConfig } from '../db/pg-database.ts'
import { publishUnpublishedMovies, republishOwnMovies } from '../movies/movie-replica.ts'
import { STORE_SIDES } from '../movies/movie-state.ts'

let config
try {
  config = parseEnv({ ...databaseEnv, store: env.oneOf('REPLICATION_STORE', STORE_SIDES, 'legacy', 'which store DB_CONNECTION_STRING is: legacy (legacy-db) or catalog (catalog-db)') })
} catch (error) {
  console.error(`replication:republish: ${(error as Error).message}`)
  process.exit(1)
}
const db = createPgDatabaseFromConfig(config)
try {
  const fresh = await publishUnpublishedMovies(db, config.store)
  const again = await republishOwnMovies(db, config.store)
  console.log(`${config.store}: ${again} movies written here queued for movie-state again (${fresh} of them never published before); the service's outbox relay publishes them`)
} catch (error) {
  console.error(`replication:republish failed: ${(error as Error).message}`)
  process.exitCode = 1
} finally {
  await db.close()
}
