-- no-transaction
-- 0013–0015 give auth_events a bytewise unique index on (sender, event_id) without blocking
-- ingest (each CONCURRENTLY statement must be a migration of its own). First, drop what an
-- interrupted build of it may have left: an invalid index that would otherwise stay.
DROP INDEX CONCURRENTLY IF EXISTS auth_events_event_id_bytes;
