-- One writer per record, by construction (docs/architecture.md, "One writer per entity"). Shared
-- by every store that holds a replicated entity (legacy-db and catalog-db take this file).

-- Whether this store may write an entity, and under which epoch. Every write transaction of the
-- entity reads its row FOR KEY SHARE and is refused unless `writer` is set and this store has
-- applied the stream up to `catchup_target`; a handover (lib/replication/write-authority.ts)
-- takes the row FOR UPDATE, so it waits for the writes in flight and no write starts after it.
CREATE TABLE IF NOT EXISTS write_authority (
    entity VARCHAR(50) PRIMARY KEY,
    -- Raised by one at every handover; a handover message of an epoch not above it changes nothing.
    epoch BIGINT NOT NULL CHECK (epoch >= 0),
    writer BOOLEAN NOT NULL,
    -- A handover to this store read from the stream, not taken up yet (its epoch).
    pending_epoch BIGINT,
    -- After a release: the store the writes were handed to (for the refusal's message).
    handed_to VARCHAR(20),
    -- Set when a process of this store starts replicating, until it knows the stream's end:
    -- a store restored from a backup must not write (or serve retired reads) before it has
    -- applied what it lost.
    catchup_pending BOOLEAN NOT NULL DEFAULT false,
    -- [{"topic": t, "partition": p, "offset": o}]: the offsets this store must have applied
    -- (replication_offsets) before it writes.
    catchup_target JSONB NOT NULL DEFAULT '[]',
    changed_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- How far this store has applied each partition of the other store's changes: written in the
-- same transaction as the applied rows, so a store restored from a backup resumes from what it
-- holds, not from the consumer group's offsets in Kafka.
CREATE TABLE IF NOT EXISTS replication_offsets (
    topic VARCHAR(249) NOT NULL,
    partition INTEGER NOT NULL,
    -- The offset of the next message to apply.
    next_offset BIGINT NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (topic, partition)
);

-- A change that cannot be applied without losing a record: the same key holds a different
-- record here at the same version, or a change built on a version this store does not hold.
-- Both versions are kept; the key takes no further change until an operator resolves it.
CREATE TABLE IF NOT EXISTS replication_conflicts (
    id BIGSERIAL PRIMARY KEY,
    entity VARCHAR(50) NOT NULL,
    record_key VARCHAR(100) NOT NULL,
    local_version BIGINT,
    local_origin VARCHAR(20),
    local_document JSONB,
    incoming_version BIGINT NOT NULL,
    incoming_origin VARCHAR(20) NOT NULL,
    -- The whole incoming change (payload of its message) and its event id.
    incoming_state JSONB NOT NULL,
    incoming_event_id UUID NOT NULL,
    reason TEXT NOT NULL,
    detected_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    resolved_at TIMESTAMP WITH TIME ZONE,
    resolution VARCHAR(40),
    resolved_by VARCHAR(100)
);
CREATE INDEX IF NOT EXISTS idx_replication_conflicts_open ON replication_conflicts (entity, record_key) WHERE resolved_at IS NULL;

-- A barrier row is published only once every earlier row of the outbox is sent (acknowledged by
-- Kafka): a handover message then follows every change the releasing store made.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS barrier BOOLEAN NOT NULL DEFAULT false;
