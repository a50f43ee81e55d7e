// The store's side of one writer per entity, for the edge proxy (proxy/rollout/store-writers.ts)
// and operators on the inside (/internal is never forwarded from the outside, proxy/edge):
//   GET  /internal/writer                 {entity, store, writer, epoch, pendingEpoch, handedTo, catchingUp, caughtUpSinceStart, conflicts}
//   POST /internal/writer/release         {expectEpoch?}  hand the writes over to the other store
//   GET  /internal/conflicts              {count, conflicts[≤50]}
//   POST /internal/conflicts/resolve      {key, resolution: keep|take|rekey, actor}
import type { FastifyInstance } from 'fastify'
import type { Database } from '../db/database.ts'
import { errors } from '../errors.ts'
import { MOVIE_STATE_TOPIC, MOVIES_ENTITY, STORE_SIDES, type StoreSide } from '../movies/movie-state.ts'
import { openConflicts, resolveConflict, RESOLUTIONS, type Resolution } from './conflicts.ts'
import { authorityState, releaseWrites } from './write-authority.ts'

export const WRITER_PATH = '/internal/writer'
export const CONFLICTS_PATH = '/internal/conflicts'

export interface WriterRoutesOptions {
  db: Database
  self: StoreSide
  /** Replication runs (Kafka configured): without it a handover could never reach the other store. */
  replicating: boolean
  /** This process has seen its store caught up with the stream since it started (the store's row can say so of an earlier process). */
  caughtUpSinceStart: () => boolean
}

export async function writerRoutes(app: FastifyInstance, opts: WriterRoutesOptions): Promise<void> {
  const { db, self } = opts
  const other = STORE_SIDES.find((s) => s !== self)!
  const state = async () => {
    const [authority, conflicts] = await Promise.all([authorityState(db, MOVIES_ENTITY, self), openConflicts(db, 0)])
    return { ...authority, replicating: opts.replicating, caughtUpSinceStart: opts.caughtUpSinceStart(), conflicts: conflicts.count }
  }

  app.get(WRITER_PATH, { schema: { hide: true } }, state)

  app.post<{ Body: { expectEpoch?: number } | null }>(
    `${WRITER_PATH}/release`,
    {
      schema: {
        hide: true,
        body: { type: ['object', 'null'], additionalProperties: false, properties: { expectEpoch: { type: 'integer', minimum: 0 } } },
      },
    },
    async (request) => {
      if (!opts.replicating) throw new errors.STAGE_REFUSED(`replication is off on this ${self} store (KAFKA_BROKERS unset): a handover could not reach ${other}`)
      const { released } = await releaseWrites(db, { entity: MOVIES_ENTITY, store: self, to: other, expectEpoch: request.body?.expectEpoch, topic: MOVIE_STATE_TOPIC })
      if (released) request.log.warn({ entity: MOVIES_ENTITY, to: other }, 'movie writes released: handed over to the other store')
      return { released, ...(await state()) }
    },
  )

  app.get(CONFLICTS_PATH, { schema: { hide: true } }, async () => openConflicts(db))

  app.post<{ Body: { key: string; resolution: Resolution; actor: string } }>(
    `${CONFLICTS_PATH}/resolve`,
    {
      schema: {
        hide: true,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['key', 'resolution', 'actor'],
          properties: {
            key: { type: 'string', pattern: '^[1-9][0-9]{0,9}$' },
            resolution: { type: 'string', enum: [...RESOLUTIONS] },
            actor: { type: 'string', minLength: 1, maxLength: 100 },
          },
        },
      },
    },
    async (request) => {
      const result = await resolveConflict(db, { ...request.body, self })
      request.log.warn({ ...result, actor: request.body.actor }, 'replication conflict resolved')
      return result
    },
  )
}
