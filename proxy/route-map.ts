// The route map is data (proxy/routes.json): which prefix goes to which upstream, and which
// flag moves it from the legacy upstream to the new one. Checked at start with errors that
// name the entry and the field.
import { readFileSync } from 'node:fs'
import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { ConfigError } from '../lib/config.ts'
import type { ProxyConfig } from './config.ts'

const Name = Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,62}$' })

const RouteEntry = Type.Object(
  {
    name: Name,
    prefix: Type.String({ pattern: '^/([A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*)?$' }),
    legacy: Name,
    target: Type.Optional(Name),
    flag: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9._-]{1,100}$' })),
  },
  { additionalProperties: false },
)

const RouteFile = Type.Object(
  { $comment: Type.Optional(Type.String()), routes: Type.Array(RouteEntry, { minItems: 1 }) },
  { additionalProperties: false },
)

export type RouteEntry = Static<typeof RouteEntry>

export interface Upstream {
  name: string
  url: string
}

export interface Route {
  name: string
  prefix: string
  legacy: Upstream
  /** Absent: the route always goes to `legacy`. */
  target?: Upstream
  flag?: string
}

/** Paths the proxy answers itself; a route may not claim them. */
export const RESERVED_PATHS = ['/health', '/ready', '/metrics', '/admin']

export function upstreamUrls(config: Pick<ProxyConfig, 'monolithUrl' | 'moviesServiceUrl' | 'eventsServiceUrl'>): Record<string, string> {
  return {
    monolith: config.monolithUrl,
    'movies-service': config.moviesServiceUrl,
    'events-service': config.eventsServiceUrl,
  }
}

export function loadRouteMap(file: string, upstreams: Record<string, string>): Route[] {
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'))
  } catch (error) {
    throw new ConfigError(`route map ${file}: ${(error as Error).message}`)
  }
  return parseRouteMap(raw, upstreams, file)
}

export function parseRouteMap(raw: unknown, upstreams: Record<string, string>, source = 'route map'): Route[] {
  const problems: string[] = []
  for (const error of Value.Errors(RouteFile, raw)) {
    problems.push(`${error.path || '/'}: ${error.message}${error.value !== undefined && typeof error.value !== 'object' ? ` (got ${JSON.stringify(error.value)})` : ''}`)
    if (problems.length >= 5) break
  }
  if (problems.length) throw new ConfigError(`${source} is invalid: ${problems.join('; ')}`)

  const entries = (raw as Static<typeof RouteFile>).routes
  const known = Object.keys(upstreams)
  const upstream = (name: string, where: string): Upstream => {
    const url = upstreams[name]
    if (!url) problems.push(`${where}: unknown upstream "${name}" (known: ${known.join(', ')})`)
    return { name, url: (url ?? '').replace(/\/+$/, '') }
  }
  const seenNames = new Set<string>()
  const seenPrefixes = new Set<string>()
  const routes = entries.map((entry, i): Route => {
    const where = `/routes/${i}`
    if (seenNames.has(entry.name)) problems.push(`${where}/name: duplicate route name "${entry.name}"`)
    if (seenPrefixes.has(entry.prefix)) problems.push(`${where}/prefix: duplicate prefix "${entry.prefix}"`)
    seenNames.add(entry.name)
    seenPrefixes.add(entry.prefix)
    if (RESERVED_PATHS.some((p) => entry.prefix === p || entry.prefix.startsWith(`${p}/`))) {
      problems.push(`${where}/prefix: "${entry.prefix}" is answered by the proxy itself (${RESERVED_PATHS.join(', ')})`)
    }
    if ((entry.target === undefined) !== (entry.flag === undefined)) {
      problems.push(`${where}: "target" and "flag" go together (a split needs both)`)
    }
    if (entry.target !== undefined && entry.target === entry.legacy) problems.push(`${where}/target: same upstream as legacy`)
    return {
      name: entry.name,
      prefix: entry.prefix,
      legacy: upstream(entry.legacy, `${where}/legacy`),
      target: entry.target === undefined ? undefined : upstream(entry.target, `${where}/target`),
      flag: entry.flag,
    }
  })
  if (!seenPrefixes.has('/')) problems.push('routes: a catch-all route with prefix "/" is required (everything else goes somewhere)')
  if (problems.length) throw new ConfigError(`${source} is invalid: ${problems.join('; ')}`)
  return routes
}

/** The route a path belongs to: longest prefix on a segment boundary. For explain and tests; the hot path uses Fastify's router. */
export function matchRoute(routes: readonly Route[], path: string): Route {
  let best: Route | undefined
  for (const route of routes) {
    const p = route.prefix
    const hit = p === '/' || path === p || path.startsWith(`${p}/`)
    if (hit && (!best || p.length > best.prefix.length)) best = route
  }
  return best!
}
