-- The transactional outbox (docs/architecture.md, "Events from the services"): every create
-- of the monolith and the movies service inserts its event here in the same transaction as
-- the row; the relay in each service process publishes pending rows to Kafka in `position`
-- order and marks them sent. The columns also fit Debezium's outbox event router
-- (id, aggregate type and id, payload), the scale-out path.
CREATE TABLE IF NOT EXISTS outbox (
    -- Insertion order: the relay publishes in this order (per key, the order of the writes).
    position BIGSERIAL PRIMARY KEY,
    -- The event's id, also the envelope's `id`: consumers drop duplicates by it.
    id UUID NOT NULL UNIQUE,
    -- Envelope type: movie, user, payment, subscription.
    aggregate_type VARCHAR(50) NOT NULL,
    -- The Kafka message key: the entity id.
    aggregate_id VARCHAR(100) NOT NULL,
    -- Topic without the deployment's KAFKA_TOPIC_PREFIX.
    topic VARCHAR(249) NOT NULL,
    -- The whole envelope {id, type, timestamp, payload}, published as the message value
    -- (json, not jsonb: the text is kept as written, field order included).
    payload JSON NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    -- A relay owns a claimed row until then; a row whose lease ran out (relay died between
    -- send and mark) is claimed again and sent again: at-least-once.
    lease_until TIMESTAMP WITH TIME ZONE,
    attempts INTEGER NOT NULL DEFAULT 0,
    sent_at TIMESTAMP WITH TIME ZONE
);

CREATE INDEX IF NOT EXISTS idx_outbox_pending ON outbox (position) WHERE sent_at IS NULL;
CREATE INDEX IF NOT EXISTS idx_outbox_pending_key ON outbox (topic, aggregate_id, position) WHERE sent_at IS NULL;
CREATE INDEX IF NOT EXISTS idx_outbox_sent_at ON outbox (sent_at) WHERE sent_at IS NOT NULL;

-- Wakes the relays (LISTEN outbox_events) when a transaction that wrote events commits; one
-- notification per statement, and PostgreSQL folds identical ones of a transaction into one.
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox_events', '');
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS outbox_notify ON outbox;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
