// The writer side switched at once on every replica. A switch (proxy/rollout/stages.ts) first
// puts a hold on the route's writes — a key in Redis every replica reads on each write of a split
// route with a writer side, or in process without Redis — then waits until the side losing the
// writes has nothing left on its way to the other store, sets the flag, and for a while (longer
// than any replica takes to see the flag) leaves the new side in the key. A write that arrives
// during the hold waits (at most `holdMs`) and then goes to the side decided; none goes to the old
// side once the hold began, so the two stores never take writes at once and their ids never collide.
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from '../../lib/logger.ts'
import type { Redis } from '../../lib/redis.ts'
import type { Side } from './decision.ts'

export interface WritesFenceOptions {
  keyPrefix: string
  /** Longest hold of a route's writes (a switch that cannot finish in time gives up). */
  holdMs: number
  /** How long the new side stays in the key after a switch: longer than the flag takes to reach every replica. */
  bridgeMs: number
}

export interface WritesFence {
  /**
   * Hot path, writes only: the side a switch decided (waiting out a hold) while this replica's
   * flag (`flagSide`) has not caught up with it, or undefined = the flag's. Once the flag agreed,
   * that switch's side is not used again here: a later change of the flag (a hand edit) rules.
   * Never throws.
   */
  sideFor(route: string, flagSide: Side | undefined): Promise<Side | undefined>
  /** The side the last switch decided while it is bridged (whatever this replica's flag says yet); undefined = none. */
  current(route: string): Promise<Side | undefined>
  /** Holds the route's writes; false when another switch holds them already. */
  hold(route: string): Promise<boolean>
  /** Ends a hold: with the new side (bridged), or undefined = the switch gave up, the flag stands. */
  release(route: string, side: Side | undefined): Promise<void>
}

const HOLD = 'hold'
const POLL_MS = 25

export function createWritesFence(options: WritesFenceOptions, deps: { redis?: Redis; logger: Logger }): WritesFence {
  // Two keys per route: the hold (taken with NX: one switch at a time) and the new side (bridged).
  const local = new Map<string, { value: string; until: number }>()
  /** Per route, the switch whose side this replica's flag has shown already. */
  const caughtUp = new Map<string, string>()
  const key = (route: string) => `${options.keyPrefix}${route}`
  const holdKey = (route: string) => `${options.keyPrefix}${route}:hold`
  const fresh = (k: string) => {
    const entry = local.get(k)
    return entry && entry.until > Date.now() ? entry.value : undefined
  }
  /** The hold if any, else the bridged side. */
  async function read(route: string): Promise<string | undefined> {
    if (!deps.redis) return fresh(holdKey(route)) ?? fresh(key(route))
    const [hold, side] = await deps.redis.mget(holdKey(route), key(route))
    return hold ?? side ?? undefined
  }
  return {
    async sideFor(route, flagSide) {
      const until = Date.now() + options.holdMs
      try {
        for (;;) {
          const value = await read(route)
          const [side, id] = value?.split(' ') ?? []
          if ((side === 'legacy' || side === 'target') && id) {
            if (caughtUp.get(route) === id) return undefined
            if (side === flagSide) return void caughtUp.set(route, id)
            return side
          }
          if (value !== HOLD || Date.now() > until) return undefined
          await sleep(POLL_MS)
        }
      } catch (err) {
        deps.logger.warn({ route, err: (err as Error).message }, 'writes fence unreadable: the flag decides')
        return undefined
      }
    },
    async current(route) {
      const value = deps.redis ? await deps.redis.get(key(route)) : fresh(key(route))
      const side = value?.split(' ')[0]
      return side === 'legacy' || side === 'target' ? side : undefined
    },
    async hold(route) {
      if (deps.redis) return (await deps.redis.set(holdKey(route), HOLD, 'PX', options.holdMs, 'NX')) === 'OK'
      if (fresh(holdKey(route))) return false
      local.set(holdKey(route), { value: HOLD, until: Date.now() + options.holdMs })
      return true
    },
    async release(route, side) {
      const value = `${side} ${randomUUID()}`
      if (deps.redis) {
        if (side) await deps.redis.set(key(route), value, 'PX', options.bridgeMs)
        await deps.redis.del(holdKey(route))
        return
      }
      if (side) local.set(key(route), { value, until: Date.now() + options.bridgeMs })
      local.delete(holdKey(route))
    },
  }
}
