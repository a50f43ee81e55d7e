// The real monolith and movies-service on a throw-away test database, a stub in place of the
// events service (it needs Kafka), and the proxy process in front: for end-to-end proxy tests.
import { testDatabase } from '../helpers/infra.ts'
import type { TestDatabase } from '../../dev/pg-admin.ts'
import { startService, type ServiceProcess } from '../helpers/processes.ts'
import { startStubUpstream, type StubUpstream } from './stub-upstream.ts'

export interface RealStack {
  database: TestDatabase
  monolith: ServiceProcess
  movies: ServiceProcess
  events: StubUpstream
  proxy: ServiceProcess
  /** Stops every process (each by its handle) and drops the database. */
  stop(): Promise<void>
}

export async function startRealStack(proxyEnv: Record<string, string>): Promise<RealStack> {
  const database = await testDatabase()
  const events = await startStubUpstream('events-service')
  const [monolith, movies] = await Promise.all([
    startService('monolith/server.ts', { DB_CONNECTION_STRING: database.url }),
    startService('movies-service/server.ts', { DB_CONNECTION_STRING: database.url }),
  ])
  const proxy = await startService(
    'proxy/server.ts',
    { MONOLITH_URL: monolith.url, MOVIES_SERVICE_URL: movies.url, EVENTS_SERVICE_URL: events.url, ...proxyEnv },
    { readyPath: '/ready' },
  )
  const stop = async () => {
    await proxy.stop()
    await monolith.stop()
    await movies.stop()
    await events.close()
    await database.drop()
  }
  return { database, monolith, movies, events, proxy, stop }
}
