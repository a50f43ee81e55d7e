// What `npm start` prints once everything answers: the proxy first (that is what clients call).
import type { StartConfig } from './config.ts'
import type { Piece } from './embedded.ts'

export function printBanner(o: {
  config: StartConfig
  adminToken: string
  flagsFile: string
  pieces: Record<'db' | 'catalogDb' | 'kafka' | 'redis', Piece<unknown>>
}): void {
  const { ports, host, unleashUrl } = o.config
  const shown = host === '0.0.0.0' ? 'localhost' : host
  const url = (port: number) => `http://${shown}:${port}`
  const proxy = url(ports.proxy)
  // The operators' listener is on loopback only (dev/start/main.ts).
  const ops = `http://127.0.0.1:${ports.admin}`
  const kind = (p: Piece<unknown>) => (p.embedded ? 'embedded' : 'real')
  console.log(`
CinemaAbyss edge is running.

  Proxy (call this)   ${proxy}          e.g. curl ${proxy}/api/movies
  Console             ${ops}/admin/   log in with the admin token below (operators' listener, this machine only)
  Admin token         ${o.adminToken}
  Admin API           ${ops}/admin/state   Authorization: Bearer ${o.adminToken}
  Metrics             ${ops}/metrics  (events: ${url(ports.events)}/metrics)
  OpenAPI             ${ops}/documentation/json  (the proxy's own API; each service below serves its own)

  monolith            ${url(ports.monolith)}
  movies-service      ${url(ports.movies)}
  events-service      ${url(ports.events)}

  PostgreSQL          ${kind(o.pieces.db)}: ${o.pieces.db.description}  (legacy-db: the monolith's)
  catalog-db          ${kind(o.pieces.catalogDb)}: ${o.pieces.catalogDb.description}  (the movies service's own)
  Kafka               ${kind(o.pieces.kafka)}: ${o.pieces.kafka.description}
  Redis               ${kind(o.pieces.redis)}: ${o.pieces.redis.description}
  Flags               ${unleashUrl ? `real Unleash: ${unleashUrl}` : `local file: ${o.flagsFile}`}

Move the movies route to the movies service (percent of users):
  curl -X PUT -H 'Authorization: Bearer ${o.adminToken}' -H 'content-type: application/json' \\
       -d '{"percent": 50}' ${ops}/admin/routes/movies/rollout
  ${unleashUrl ? '(in Unleash mode change the rollout of "movies-migration" in the Unleash UI instead)' : `(or edit ${o.flagsFile}: it is reloaded on change)`}

Ctrl-C stops everything.
`)
}
