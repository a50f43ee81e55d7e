-- The trace context (W3C traceparent/tracestate, as the propagator wrote them) of the
-- transaction that wrote the row, when it ran inside a traced request: the relay's publish
-- continues that trace (lib/tracing/messaging.ts). NULL when tracing is off.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS trace_context JSONB;
