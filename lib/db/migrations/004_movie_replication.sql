-- Movie replication bookkeeping (docs/architecture.md, "catalog-db and movie replication").
-- Applied to both stores that hold movies: legacy-db (this folder) and catalog-db
-- (lib/db/catalog-migrations takes this file too), so the shared movie code finds the same
-- tables on either side.

-- The replication state of each movie: the version of the full state this store holds, which
-- side wrote it and when. A change is applied only over an older version (never older over
-- newer); a row written here has applied_at NULL, one applied from the other side has it set.
CREATE TABLE IF NOT EXISTS movie_versions (
    movie_id INTEGER PRIMARY KEY REFERENCES movies(id) ON DELETE CASCADE,
    version BIGINT NOT NULL CHECK (version > 0),
    -- legacy | catalog: the side whose write produced this state.
    origin VARCHAR(20) NOT NULL,
    -- When the writing side committed it (replication lag is measured from here).
    changed_at TIMESTAMP WITH TIME ZONE NOT NULL,
    -- The movie-state event that carried it (the outbox row's id on the writing side).
    event_id UUID NOT NULL,
    applied_at TIMESTAMP WITH TIME ZONE
);
CREATE INDEX IF NOT EXISTS idx_movie_versions_origin ON movie_versions (origin, changed_at);

-- Small facts about this store's replica: e.g. the Kafka consumer group it reads movie-state
-- with (created at the first start, so a new or rebuilt store replays the topic from the start).
CREATE TABLE IF NOT EXISTS replication_state (
    name VARCHAR(100) PRIMARY KEY,
    value TEXT NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- Poison messages: a movie-state message this store could not apply (unreadable, invalid, or
-- refused by a constraint) is kept here with the reason, and the stream goes on.
CREATE TABLE IF NOT EXISTS replication_parked (
    id BIGSERIAL PRIMARY KEY,
    topic VARCHAR(249) NOT NULL,
    partition INTEGER NOT NULL,
    message_offset BIGINT NOT NULL,
    message_key TEXT,
    message_value TEXT,
    error TEXT NOT NULL,
    parked_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (topic, partition, message_offset)
);
