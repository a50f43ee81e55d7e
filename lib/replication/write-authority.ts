// One writer per entity, decided by the stores themselves (docs/architecture.md, "One writer per
// entity"). Each store keeps, in its own database (write_authority, 006_write_authority.sql),
// whether it is the writer of an entity and under which epoch:
//
//   write    every write transaction of the entity first reads the row FOR KEY SHARE: refused
//            (NOT_WRITER, nothing written) unless this store is the writer and has applied the
//            stream up to its catch-up target — whoever sent the write (any proxy replica, a
//            job, a port-forward).
//   release  the writer, asked to hand over, takes the row FOR UPDATE (so it waits for the
//            writes in flight and no write starts after it), stops being the writer at epoch
//            e+1 and records a writer-handover message in its outbox as a barrier (published
//            only once every earlier change of this store is acknowledged by Kafka).
//   take up  the other store's consumer applies that message (pending_epoch), then reads the
//            topic's end offsets and becomes the writer with them as its catch-up target: it
//            takes its first write only once it has applied everything up to there, which
//            includes every change the releasing store ever made. No timer decides anything.
//
// At most one store is the writer of an entity at any time: only the writer can release, a
// release names one epoch, and a store takes up only an epoch above its own.
import { randomUUID } from 'node:crypto'
import type { Database, Queryable } from '../db/database.ts'
import { errors } from '../errors.ts'
import { recordOutboxMessage } from '../outbox/outbox.ts'

export const WRITER_HANDOVER_TYPE = 'writer-handover'

/** The message a releasing store publishes on the entity's state topic (key `writer:<entity>`). */
export interface WriterHandover {
  entity: string
  epoch: number
  /** The store names (legacy, catalog, …) of the releasing and the gaining store. */
  from: string
  to: string
  released_at: string
}

export interface WriterHandoverEnvelope {
  id: string
  type: typeof WRITER_HANDOVER_TYPE
  timestamp: string
  payload: WriterHandover
}

export const handoverKey = (entity: string) => `writer:${entity}`

/** An offset a store must have applied: the next offset to apply on one partition. */
export interface TopicPosition {
  topic: string
  partition: number
  offset: number
}

export interface AuthorityState {
  entity: string
  /** This store's name. */
  store: string
  writer: boolean
  epoch: number
  pendingEpoch: number | null
  handedTo: string | null
  /** Not yet known to have applied the stream up to its catch-up target. */
  catchingUp: boolean
  changedAt: string
}

interface AuthorityRow {
  writer: boolean
  epoch: string
  pending_epoch: string | null
  handed_to: string | null
  catchup_pending: boolean
  behind: boolean
  changed_at: string
}

// Behind: some partition of the catch-up target not applied that far yet.
const AUTHORITY = `
  SELECT a.writer, a.epoch::text AS epoch, a.pending_epoch::text AS pending_epoch, a.handed_to, a.catchup_pending, a.changed_at,
         EXISTS (SELECT 1 FROM jsonb_to_recordset(a.catchup_target) AS c(topic text, partition int, "offset" bigint)
                   LEFT JOIN replication_offsets r ON r.topic = c.topic AND r.partition = c.partition
                  WHERE COALESCE(r.next_offset, 0) < c."offset") AS behind
    FROM write_authority a WHERE a.entity = $1`

function stateOf(entity: string, store: string, row: AuthorityRow | undefined): AuthorityState {
  if (!row) return { entity, store, writer: false, epoch: 0, pendingEpoch: null, handedTo: null, catchingUp: false, changedAt: new Date(0).toISOString() }
  return {
    entity,
    store,
    writer: row.writer,
    epoch: Number(row.epoch),
    pendingEpoch: row.pending_epoch === null ? null : Number(row.pending_epoch),
    handedTo: row.handed_to,
    catchingUp: row.catchup_pending || row.behind,
    changedAt: row.changed_at,
  }
}

/**
 * Inside a write transaction of `entity`, before anything is written: throws NOT_WRITER unless
 * this store is the writer and caught up. Holds the row FOR KEY SHARE until the transaction
 * ends, so a release waits for this write to commit or roll back.
 */
export async function claimWrite(tx: Queryable, entity: string): Promise<void> {
  const { rows } = await tx.query<AuthorityRow>(`${AUTHORITY} FOR KEY SHARE OF a`, [entity])
  const row = rows[0]
  if (!row) throw new errors.NOT_WRITER(entity, 'this store has no write authority for it')
  if (!row.writer) {
    const why = row.pending_epoch !== null ? 'the writes are being handed over to this store' : row.handed_to ? `the writes were handed over to ${row.handed_to}` : 'another store is the writer'
    throw new errors.NOT_WRITER(entity, why)
  }
  if (row.catchup_pending || row.behind) throw new errors.NOT_WRITER(entity, 'this store is catching up with the other store\'s changes')
}

export async function authorityState(db: Queryable, entity: string, store: string): Promise<AuthorityState> {
  const { rows } = await db.query<AuthorityRow>(AUTHORITY, [entity])
  return stateOf(entity, store, rows[0])
}

export interface ReleaseRequest {
  entity: string
  /** This store's name and the store the writes go to. */
  store: string
  to: string
  /** Release only if this store's epoch is still this one (the caller's view); undefined = any. */
  expectEpoch?: number
  /** The entity's state topic (without KAFKA_TOPIC_PREFIX), where the handover message goes. */
  topic: string
}

/**
 * Hands the writes of an entity over to the other store: waits for the writes in flight, stops
 * writing here at epoch+1, and records the handover message (a barrier) in the outbox, all in one
 * transaction. Not the writer (any more), or another epoch than expected: changes nothing.
 */
export async function releaseWrites(db: Database, req: ReleaseRequest): Promise<{ released: boolean; state: AuthorityState }> {
  const released = await db.transaction(async (tx) => {
    const { rows } = await tx.query<{ writer: boolean; epoch: string }>('SELECT writer, epoch::text AS epoch FROM write_authority WHERE entity = $1 FOR UPDATE', [req.entity])
    const row = rows[0]
    if (!row?.writer || (req.expectEpoch !== undefined && Number(row.epoch) !== req.expectEpoch)) return false
    const epoch = Number(row.epoch) + 1
    const { rows: done } = await tx.query<{ changed_at: string }>(
      `UPDATE write_authority SET writer = false, epoch = $2, pending_epoch = NULL, handed_to = $3, changed_at = clock_timestamp()
        WHERE entity = $1 RETURNING changed_at`,
      [req.entity, epoch, req.to],
    )
    const id = randomUUID()
    const payload: WriterHandover = { entity: req.entity, epoch, from: req.store, to: req.to, released_at: done[0].changed_at }
    const envelope: WriterHandoverEnvelope = { id, type: WRITER_HANDOVER_TYPE, timestamp: new Date().toISOString(), payload }
    await recordOutboxMessage(tx, { id, aggregateType: WRITER_HANDOVER_TYPE, key: handoverKey(req.entity), topic: req.topic, envelope, barrier: true })
    return true
  })
  return { released, state: await authorityState(db, req.entity, req.store) }
}

/**
 * A handover message read from the stream, in the consumer's apply transaction: one to this
 * store of a newer epoch is noted (taken up by takeUpHandover once the stream's end is known);
 * one to another store of a newer epoch ends this store's writing (a store rebuilt from the
 * stream learns that way that its old epoch is over). Older epochs change nothing.
 */
export async function applyHandover(tx: Queryable, handover: WriterHandover, self: string): Promise<'pending' | 'ended' | 'old'> {
  const { rows } = await tx.query<{ epoch: string; pending_epoch: string | null }>(
    'SELECT epoch::text AS epoch, pending_epoch::text AS pending_epoch FROM write_authority WHERE entity = $1 FOR UPDATE',
    [handover.entity],
  )
  const row = rows[0]
  const known = row ? Math.max(Number(row.epoch), Number(row.pending_epoch ?? 0)) : 0
  if (handover.epoch <= known) return 'old'
  if (handover.to === self) {
    await tx.query(
      `INSERT INTO write_authority (entity, epoch, writer, pending_epoch) VALUES ($1, 0, false, $2)
       ON CONFLICT (entity) DO UPDATE SET pending_epoch = EXCLUDED.pending_epoch, changed_at = clock_timestamp()`,
      [handover.entity, handover.epoch],
    )
    return 'pending'
  }
  await tx.query(
    `INSERT INTO write_authority (entity, epoch, writer, handed_to) VALUES ($1, $2, false, $3)
     ON CONFLICT (entity) DO UPDATE SET epoch = EXCLUDED.epoch, writer = false, pending_epoch = NULL, handed_to = EXCLUDED.handed_to, changed_at = clock_timestamp()`,
    [handover.entity, handover.epoch, handover.to],
  )
  return 'ended'
}

/** Whether a handover to this store waits to be taken up, or this store's catch-up target is not known yet. */
export async function needsStreamEnd(db: Queryable, entity: string): Promise<boolean> {
  const { rows } = await db.query<{ needed: boolean }>('SELECT (pending_epoch IS NOT NULL OR catchup_pending) AS needed FROM write_authority WHERE entity = $1', [entity])
  return rows[0]?.needed === true
}

/** A process of this store starts replicating: no write (nor retired read) until it knows the stream's end. */
export async function startCatchUp(db: Queryable, entity: string): Promise<void> {
  await db.query('UPDATE write_authority SET catchup_pending = true WHERE entity = $1', [entity])
}

/**
 * `end`: the stream's end offsets, read after the handover message (or the start) was seen. A
 * pending handover is taken up (writer at its epoch), and the catch-up target becomes `end`:
 * writes wait until this store has applied that far.
 */
export async function takeUpHandover(db: Queryable, entity: string, end: readonly TopicPosition[]): Promise<void> {
  await db.query(
    `UPDATE write_authority
        SET writer = writer OR (pending_epoch IS NOT NULL AND pending_epoch > epoch),
            epoch = GREATEST(epoch, COALESCE(pending_epoch, 0)),
            handed_to = CASE WHEN pending_epoch IS NOT NULL AND pending_epoch > epoch THEN NULL ELSE handed_to END,
            pending_epoch = NULL, catchup_pending = false, catchup_target = $2::jsonb,
            changed_at = CASE WHEN pending_epoch IS NOT NULL THEN clock_timestamp() ELSE changed_at END
      WHERE entity = $1 AND (pending_epoch IS NOT NULL OR catchup_pending)`,
    [entity, JSON.stringify(end)],
  )
}

/** Records, in the apply transaction, that every message of `partition` before `nextOffset` is applied here. */
export async function recordApplied(tx: Queryable, topic: string, partition: number, nextOffset: string): Promise<void> {
  await tx.query(
    `INSERT INTO replication_offsets (topic, partition, next_offset, updated_at) VALUES ($1, $2, $3, clock_timestamp())
     ON CONFLICT (topic, partition) DO UPDATE SET next_offset = GREATEST(replication_offsets.next_offset, EXCLUDED.next_offset), updated_at = EXCLUDED.updated_at`,
    [topic, partition, nextOffset],
  )
}

/** Per partition of `topic`, the next offset this store has to apply (absent = nothing applied yet). */
export async function appliedOffsets(db: Queryable, topic: string): Promise<Map<number, bigint>> {
  const { rows } = await db.query<{ partition: number; next_offset: string }>('SELECT partition, next_offset::text AS next_offset FROM replication_offsets WHERE topic = $1', [topic])
  return new Map(rows.map((r) => [r.partition, BigInt(r.next_offset)]))
}
