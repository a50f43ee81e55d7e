// Throw-away PostgreSQL databases, for the test suite and the benchmarks: the tests' global
// setup migrates one template per run and every test file clones its own database from it
// (CREATE DATABASE ... TEMPLATE is fast), so files running in parallel never see each other's
// rows; bench/outbox-delay.ts creates an empty one.
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { migrate } from '../lib/db/migrate.ts'
import { createPgDatabase } from '../lib/db/pg-database.ts'

export interface TestDatabase {
  name: string
  url: string
  drop(): Promise<void>
}

function urlFor(adminUrl: string, dbName: string): string {
  const url = new URL(adminUrl)
  url.pathname = `/${dbName}`
  return url.toString()
}

/** Runs `work` on a connection of the admin (superuser) URL, closed after. */
export async function admin<T>(adminUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5_000 })
  await client.connect()
  try {
    return await work(client)
  } finally {
    await client.end()
  }
}

function dropper(adminUrl: string, name: string) {
  return () => admin(adminUrl, async (c) => void (await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)))
}

/** An empty database (no schema), e.g. for a migration run or a third-party server. */
export async function createEmptyDatabase(adminUrl: string, prefix = 'cinemaabyss_empty'): Promise<TestDatabase> {
  const name = `${prefix}_${Date.now()}_${randomBytes(3).toString('hex')}`
  await admin(adminUrl, (c) => c.query(`CREATE DATABASE "${name}"`))
  return { name, url: urlFor(adminUrl, name), drop: dropper(adminUrl, name) }
}

export async function createTemplateDatabase(adminUrl: string): Promise<TestDatabase> {
  const template = await createEmptyDatabase(adminUrl, 'cinemaabyss_tpl')
  const db = createPgDatabase({ connectionString: template.url, max: 1 })
  try {
    await migrate(db)
  } finally {
    await db.close()
  }
  return template
}

export async function cloneDatabase(adminUrl: string, template: string): Promise<TestDatabase> {
  const name = `cinemaabyss_test_${Date.now()}_${randomBytes(3).toString('hex')}`
  await admin(adminUrl, (c) => c.query(`CREATE DATABASE "${name}" TEMPLATE "${template}"`))
  return { name, url: urlFor(adminUrl, name), drop: dropper(adminUrl, name) }
}
