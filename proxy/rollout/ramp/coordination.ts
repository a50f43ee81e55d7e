// Where ramps live and who drives them. With Redis (REDIS_URL): one lease per route with an
// expiry and a fencing token (INCR on every new holder), and the ramp state beside it; a save
// is a compare-and-set on the ramp's version, and a driver's save also needs the lease still
// held with its token and no newer token recorded, so a holder that lost its lease (paused
// past the expiry, cut off from Redis) can never write. Without Redis: one process, the
// lease always held, the state in a JSON file in the flags file's directory.
import { randomBytes } from 'node:crypto'
import { readFileSync, renameSync } from 'node:fs'
import { rename, writeFile } from 'node:fs/promises'
import type { Logger } from '../../../lib/logger.ts'
import type { Redis } from '../../../lib/redis.ts'
import type { Ramp } from './state.ts'

export type SaveResult = 'saved' | 'conflict' | 'fenced'

export interface RampStore {
  load(route: string): Promise<Ramp | undefined>
  /**
   * Stores `ramp` when the stored version is `expected` (0 = nothing stored yet): "conflict"
   * otherwise. With `fence` (a lease holder driving the ramp) also "fenced" unless that lease
   * is still held with that token.
   */
  save(ramp: Ramp, expected: number, fence?: number): Promise<SaveResult>
}

export interface Lease {
  /** "redis" = shared by the replicas; "local" = this process alone. */
  readonly kind: 'redis' | 'local'
  /** Takes or renews this process's lease on `route`: its fencing token while held, else undefined. */
  hold(route: string): Promise<number | undefined>
  /** Gives up every lease this process holds (at shutdown, so another replica takes over at once). */
  releaseAll(): Promise<void>
}

export interface Coordination {
  lease: Lease
  store: RampStore
}

/**
 * One process, no Redis: the lease is always held; ramps in `<dir>/ramps.json`. An unreadable
 * file does not stop the proxy: it is moved aside (kept for a human) and ramps start empty.
 */
export function localCoordination(file: string, logger: Logger): Coordination {
  let doc: Record<string, Ramp> = {}
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { routes?: unknown }
    if (typeof parsed?.routes !== 'object' || parsed.routes === null) throw new Error('no "routes" object')
    doc = parsed.routes as Record<string, Ramp>
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      const aside = `${file}.unreadable-${Date.now()}`
      renameSync(file, aside)
      logger.error({ file, movedTo: aside, err: (error as Error).message }, 'ramp state file unreadable: moved aside, no ramp is running (check the rollouts)')
    }
  }
  let queue: Promise<unknown> = Promise.resolve()
  const persist = async () => {
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
    await writeFile(tmp, `${JSON.stringify({ $comment: 'Ramp state of the proxy (proxy/rollout/ramp); written by the proxy, do not edit', routes: doc }, null, 2)}\n`)
    await rename(tmp, file)
  }
  return {
    lease: { kind: 'local', hold: async () => 1, releaseAll: async () => {} },
    store: {
      load: async (route) => doc[route],
      save(ramp, expected) {
        const run = queue.then(async (): Promise<SaveResult> => {
          if ((doc[ramp.route]?.version ?? 0) !== expected) return 'conflict'
          const previous = doc[ramp.route]
          doc[ramp.route] = ramp
          try {
            await persist()
          } catch (error) {
            if (previous) doc[ramp.route] = previous
            else delete doc[ramp.route]
            throw error
          }
          return 'saved'
        })
        queue = run.catch(() => {})
        return run
      },
    },
  }
}

const ACQUIRE = `
local v = redis.call('GET', KEYS[1])
if v then
  local sep = string.find(v, ' ', 1, true)
  if string.sub(v, 1, sep - 1) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(string.sub(v, sep + 1))
  end
  return 0
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. token, 'PX', ARGV[2])
return token`

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

// KEYS: state, lease. ARGV: expected version, ramp JSON, lease value ('' = not a driver), token.
const SAVE = `
local cur = redis.call('GET', KEYS[1])
local version, fence = 0, 0
if cur then
  local d = cjson.decode(cur)
  version = tonumber(d.version) or 0
  fence = tonumber(d.fence) or 0
end
if version ~= tonumber(ARGV[1]) then return 'conflict' end
if ARGV[3] ~= '' then
  if redis.call('GET', KEYS[2]) ~= ARGV[3] or tonumber(ARGV[4]) < fence then return 'fenced' end
end
redis.call('SET', KEYS[1], ARGV[2])
return 'saved'`

export interface RedisCoordinationOptions {
  redis: Redis
  /** Prefix of every key: `<prefix><route>:lease|fence|state`. */
  keyPrefix: string
  /** Lease expiry; the holder renews it on every tick. */
  leaseTtlMs: number
  /** This process; random by default. */
  owner?: string
}

export function redisCoordination(opts: RedisCoordinationOptions): Coordination {
  const { redis, keyPrefix } = opts
  const owner = opts.owner ?? `${process.pid}-${randomBytes(6).toString('hex')}`
  const key = (route: string, what: 'lease' | 'fence' | 'state') => `${keyPrefix}${route}:${what}`
  const held = new Map<string, number>()
  return {
    lease: {
      kind: 'redis',
      async hold(route) {
        try {
          const token = Number(await redis.eval(ACQUIRE, 2, key(route, 'lease'), key(route, 'fence'), owner, opts.leaseTtlMs))
          if (token > 0) held.set(route, token)
          else held.delete(route)
          return token > 0 ? token : undefined
        } catch {
          // Redis unreachable: nobody can prove it holds the lease, so nobody drives (the flag stays as it is).
          held.delete(route)
          return undefined
        }
      },
      async releaseAll() {
        const routes = [...held]
        held.clear()
        await Promise.all(routes.map(([route, token]) => redis.eval(RELEASE, 1, key(route, 'lease'), `${owner} ${token}`).catch(() => {})))
      },
    },
    store: {
      async load(route) {
        const text = await redis.get(key(route, 'state'))
        return text === null ? undefined : (JSON.parse(text) as Ramp)
      },
      async save(ramp, expected, fence) {
        const lease = fence === undefined ? '' : `${owner} ${fence}`
        return (await redis.eval(SAVE, 2, key(ramp.route, 'state'), key(ramp.route, 'lease'), expected, JSON.stringify(ramp), lease, fence ?? 0)) as SaveResult
      },
    },
  }
}
